// app.js — the qwen-edge chat page. Talks to this server's /v1/chat/completions (streaming, SSE) and keeps
// conversations in localStorage. Sends the whole conversation; the server keeps the last N rounds
// ("memory_rounds", a qwen-edge extension) so the page and the API share one memory rule.
'use strict';

const $ = (s) => document.querySelector(s);
const LS = { convs: 'qe.convs', current: 'qe.current', settings: 'qe.settings', key: 'qe.apiKey' };

// ---- i18n ----------------------------------------------------------------------------------------------
const I18N = {
  en: {
    newChat: 'New chat', settings: 'Settings', welcome: 'What can I help with?',
    privacy: 'Runs on this machine. Nothing you type leaves it.', placeholder: 'Message qwen-edge',
    hint: 'Enter to send · Shift+Enter for a new line · type 重新开始 to start over',
    systemPrompt: 'System prompt', systemPlaceholder: 'Optional: how the assistant should behave',
    temperature: 'Temperature', maxTokens: 'Max tokens', memoryRounds: 'Memory (rounds)', apiKey: 'API key',
    apiKeyPlaceholder: 'Only if the server was started with --api-key', cancel: 'Cancel', save: 'Save',
    copy: 'Copy', copied: 'Copied', regenerate: 'Regenerate', del: 'Delete', untitled: 'New chat',
    stopped: 'stopped', cached: 'cached', ttft: 'first token', tokps: 'tok/s', tokens: 'tokens',
    needKey: 'This server needs an API key. Enter it below.', wrongKey: 'The API key was not accepted.',
    error: 'Error', network: 'Cannot reach the server.', loading: 'Loading the model…', reset: 'Started over.', you: 'You', assistant: 'Assistant',
  },
  zh: {
    newChat: '新对话', settings: '设置', welcome: '有什么可以帮你？',
    privacy: '在本机运行，你输入的内容不会离开这台电脑。', placeholder: '给 qwen-edge 发消息',
    hint: 'Enter 发送 · Shift+Enter 换行 · 输入“重新开始”清空对话',
    systemPrompt: '系统提示词', systemPlaceholder: '可选：助手应该如何表现',
    temperature: '温度', maxTokens: '最大生成长度', memoryRounds: '记忆轮数', apiKey: 'API 密钥',
    apiKeyPlaceholder: '仅当服务器使用 --api-key 启动时需要', cancel: '取消', save: '保存',
    copy: '复制', copied: '已复制', regenerate: '重新生成', del: '删除', untitled: '新对话',
    stopped: '已停止', cached: '缓存', ttft: '首字延迟', tokps: '词元/秒', tokens: '词元',
    needKey: '此服务器需要 API 密钥，请在下方输入。', wrongKey: 'API 密钥不正确。',
    error: '错误', network: '无法连接服务器。', loading: '正在加载模型…', reset: '已重新开始。', you: '你', assistant: '助手',
  },
};
const LANG = (navigator.languages && navigator.languages[0] || navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
const t = (k) => (I18N[LANG][k] ?? I18N.en[k] ?? k);

function applyI18n() {
  document.documentElement.lang = LANG === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
}

// ---- storage ---------------------------------------------------------------------------------------------
const DEFAULTS = { system: '', temperature: 0.7, maxTokens: 1024, memoryRounds: 3 };
function load(key, fallback) {
  try { const v = JSON.parse(localStorage.getItem(key)); return v ?? fallback; } catch { return fallback; }
}
function save(key, v) { try { localStorage.setItem(key, JSON.stringify(v)); } catch { /* quota: keep going */ } }

let settings = { ...DEFAULTS, ...load(LS.settings, {}) };
let apiKey = localStorage.getItem(LS.key) || '';
let convs = load(LS.convs, []);
if (!Array.isArray(convs)) convs = [];
let current = localStorage.getItem(LS.current);
let busy = null; // { controller, conv, msg } while an answer streams
let ctxLen = 0;   // the server's context per conversation (from /v1/models), 0 = unknown

function persist() {
  // keep the 100 most recent conversations
  convs.sort((a, b) => b.updated - a.updated);
  if (convs.length > 100) convs.length = 100;
  save(LS.convs, convs);
  if (current) localStorage.setItem(LS.current, current); else localStorage.removeItem(LS.current);
}

const uid = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
const conv = () => convs.find((c) => c.id === current) || null;
function newConv() {
  const c = { id: uid(), title: '', messages: [], updated: Date.now() };
  convs.unshift(c);
  current = c.id;
  return c;
}

// ---- markdown ----------------------------------------------------------------------------------------------
const haveMd = typeof window.marked !== 'undefined' && typeof window.DOMPurify !== 'undefined';
// Task-list items as text: <input> is not allowed in an answer (below)
if (haveMd) window.marked.use({ gfm: true, breaks: false, renderer: { checkbox: ({ checked }) => (checked ? '☑ ' : '☐ ') } });

// An answer is model output, and a prompt-injected page or document can make it say anything: it may format
// text, link and show images, but not draw controls or restyle the page. DOMPurify's default profile keeps
// <form>, <input>, <style> and style=, enough for a fake sign-in box; so only what markdown produces is
// allowed, without style, id or name (an id could shadow the page's own #input), and with class only as
// marked writes it on code blocks (the page's classes could make an answer look like a message of yours).
// Links may be http(s), mailto or #fragments; nothing else (javascript:, data:, relative URLs into the API).
const PURIFY = {
  ALLOWED_TAGS: ['a', 'b', 'blockquote', 'br', 'code', 'del', 'details', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5',
    'h6', 'hr', 'i', 'img', 'kbd', 'li', 'mark', 'ol', 'p', 'pre', 's', 'span', 'strong', 'sub', 'summary', 'sup',
    'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'u', 'ul'],
  ALLOWED_ATTR: ['href', 'src', 'alt', 'title', 'class', 'align', 'start', 'colspan', 'rowspan', 'open'],
  FORBID_TAGS: ['form', 'input', 'button', 'textarea', 'select', 'option', 'style', 'iframe', 'frame', 'object',
    'embed', 'link', 'meta', 'base', 'dialog', 'svg', 'math', 'template'],
  FORBID_ATTR: ['style', 'id', 'name', 'srcset', 'action', 'formaction'],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  ALLOW_DATA_ATTR: false,
};
if (haveMd) {
  window.DOMPurify.addHook('uponSanitizeAttribute', (node, data) => {
    if (data.attrName === 'class' && !(node.nodeName === 'CODE' && /^language-[\w+-]+$/.test(data.attrValue))) data.keepAttr = false;
  });
}

function renderMarkdown(el, text, final) {
  if (!haveMd) { el.textContent = text; return; }
  el.innerHTML = window.DOMPurify.sanitize(window.marked.parse(text), PURIFY);
  el.querySelectorAll('a').forEach((a) => { a.target = '_blank'; a.rel = 'noopener noreferrer'; });
  el.querySelectorAll('pre > code').forEach((code) => {
    if (window.hljs && (final || text.length < 20000)) {
      try { window.hljs.highlightElement(code); } catch { /* unknown language: leave plain */ }
    }
    const pre = code.parentElement;
    const lang = (code.className.match(/language-([\w+-]+)/) || [])[1] || '';
    const bar = document.createElement('div');
    bar.className = 'code-bar';
    const label = document.createElement('span');
    label.textContent = lang;
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'copy-code';
    btn.textContent = t('copy');
    btn.addEventListener('click', () => copyText(code.innerText, btn));
    bar.append(label, btn);
    pre.prepend(bar);
  });
}

async function copyText(text, btn) {
  try {
    if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
    else {
      const ta = document.createElement('textarea');
      ta.value = text; ta.style.position = 'fixed'; ta.style.opacity = '0';
      document.body.append(ta); ta.select(); document.execCommand('copy'); ta.remove();
    }
    const old = btn.textContent;
    btn.textContent = t('copied');
    setTimeout(() => { btn.textContent = old; }, 1200);
  } catch { /* clipboard refused: nothing to do */ }
}

// ---- rendering ----------------------------------------------------------------------------------------------
const msgBox = $('#messages');

function renderList() {
  const list = $('#conv-list');
  list.textContent = '';
  for (const c of convs) {
    const item = document.createElement('div');
    item.className = 'conv-item' + (c.id === current ? ' active' : '');
    item.dataset.id = c.id;
    const title = document.createElement('button');
    title.type = 'button';
    title.className = 'conv-title';
    title.textContent = c.title || t('untitled');
    title.addEventListener('click', () => { if (!busy) { current = c.id; persist(); renderAll(); closeSidebar(); } });
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'conv-del';
    del.title = t('del');
    del.textContent = '×';
    del.addEventListener('click', (ev) => {
      ev.stopPropagation();
      if (busy && busy.conv === c) return;
      convs = convs.filter((x) => x !== c);
      if (current === c.id) current = convs[0]?.id || null;
      persist(); renderAll();
    });
    item.append(title, del);
    list.append(item);
  }
}

function statsText(s) {
  if (!s) return '';
  const parts = [];
  if (s.ttft != null) parts.push(`${t('ttft')} ${(s.ttft / 1000).toFixed(2)} s`);
  if (s.tokps != null) parts.push(`${s.tokps.toFixed(1)} ${t('tokps')}`);
  if (s.tokens != null) parts.push(`${s.tokens} ${t('tokens')}`);
  if (s.cached) parts.push(`${t('cached')} ${s.cached}`);
  if (s.stopped) parts.push(t('stopped'));
  return parts.join(' · ');
}

function messageEl(c, m, i) {
  const el = document.createElement('div');
  el.className = `msg ${m.role}`;
  const body = document.createElement('div');
  body.className = 'body';
  if (m.role === 'user') body.textContent = m.content;
  else if (m.error) { body.classList.add('error'); body.textContent = m.content ? m.content : ''; }
  else renderMarkdown(body, m.content || '', true);
  el.append(body);
  if (m.role === 'assistant') {
    if (m.error) {
      const err = document.createElement('div');
      err.className = 'error-line';
      err.textContent = `${t('error')}: ${m.error}`;
      el.append(err);
    }
    const foot = document.createElement('div');
    foot.className = 'foot';
    const stats = document.createElement('span');
    stats.className = 'stats';
    stats.textContent = statsText(m.stats);
    foot.append(stats);
    const tools = document.createElement('span');
    tools.className = 'tools';
    const copy = document.createElement('button');
    copy.type = 'button'; copy.className = 'tool copy-answer'; copy.textContent = t('copy');
    copy.addEventListener('click', () => copyText(m.content || '', copy));
    tools.append(copy);
    if (i === c.messages.length - 1) {
      const regen = document.createElement('button');
      regen.type = 'button'; regen.className = 'tool regenerate'; regen.textContent = t('regenerate');
      regen.addEventListener('click', () => regenerate());
      tools.append(regen);
    }
    foot.append(tools);
    el.append(foot);
  }
  return el;
}

function renderMessages() {
  const c = conv();
  msgBox.querySelectorAll('.msg, .notice').forEach((n) => n.remove());
  $('#empty').hidden = !!(c && c.messages.length);
  if (!c) return;
  c.messages.forEach((m, i) => msgBox.append(messageEl(c, m, i)));
  scrollDown(true);
}

function renderAll() {
  renderList();
  renderMessages();
  const c = conv();
  $('#title').textContent = c && c.title ? c.title : 'qwen-edge';
  document.title = c && c.title ? `${c.title} · qwen-edge` : 'qwen-edge';
  setBusy(!!busy);
}

function scrollDown(force) {
  const near = msgBox.scrollHeight - msgBox.scrollTop - msgBox.clientHeight < 120;
  if (force || near) msgBox.scrollTop = msgBox.scrollHeight;
}

function setBusy(on) {
  $('#send').hidden = on;
  $('#stop').hidden = !on;
  document.body.classList.toggle('busy', on);
}

function notice(text) {
  const n = document.createElement('div');
  n.className = 'notice';
  n.textContent = text;
  msgBox.append(n);
  scrollDown(true);
  setTimeout(() => n.remove(), 2500);
}

// ---- talking to the server ------------------------------------------------------------------------------------
function headers() {
  const h = { 'Content-Type': 'application/json' };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

async function* sseEvents(resp) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) yield data;
    }
  }
}

async function ask(c) {
  const history = c.messages.filter((m) => !m.error || m.content).map((m) => ({ role: m.role, content: m.content }));
  if (settings.system.trim()) history.unshift({ role: 'system', content: settings.system.trim() });
  const msg = { role: 'assistant', content: '', stats: null };
  c.messages.push(msg);
  c.updated = Date.now();
  persist();
  renderAll();
  const el = msgBox.lastElementChild;
  const body = el.querySelector('.body');
  const stats = el.querySelector('.stats');
  el.classList.add('streaming');

  const controller = new AbortController();
  busy = { controller, conv: c, msg };
  setBusy(true);
  const t0 = performance.now();
  let tFirst = null, usage = null, finish = null, pending = false;
  const paint = () => {
    pending = false;
    renderMarkdown(body, msg.content, false);
    scrollDown(false);
  };
  try {
    const resp = await fetch('/v1/chat/completions', {
      // X-Conversation-Id: a proxy in front of several replicas (deploy/nginx.conf) sends every turn of a
      // conversation to the same one, whose prompt cache holds the conversation's earlier turns
      method: 'POST', headers: { ...headers(), 'X-Conversation-Id': c.id }, signal: controller.signal,
      body: JSON.stringify({
        model: 'qwen-edge', messages: history, stream: true, stream_options: { include_usage: true },
        temperature: Number(settings.temperature),
        max_tokens: Math.min(Number(settings.maxTokens) || 1024, ctxLen || Infinity),
        memory_rounds: Number(settings.memoryRounds),
      }),
    });
    if (!resp.ok) {
      let text = `HTTP ${resp.status}`;
      try { const j = await resp.json(); text = j.error?.message || j.error || text; } catch { /* not JSON */ }
      if (resp.status === 401) {
        c.messages.pop();
        c.messages.pop(); // give the question back to the input box
        openSettings(apiKey ? t('wrongKey') : t('needKey'));
        throw Object.assign(new Error(text), { silent: true });
      }
      throw new Error(text);
    }
    for await (const data of sseEvents(resp)) {
      if (data === '[DONE]') break;
      let j;
      try { j = JSON.parse(data); } catch { continue; }
      if (j.error) throw new Error(j.error.message || 'error');
      if (j.usage) usage = j.usage;
      const ch = j.choices && j.choices[0];
      if (!ch) continue;
      if (ch.finish_reason) finish = ch.finish_reason;
      const piece = ch.delta && ch.delta.content;
      if (piece) {
        if (tFirst == null) tFirst = performance.now();
        msg.content += piece;
        if (!pending) { pending = true; requestAnimationFrame(paint); }
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') msg.stopped = true;
    else if (e.silent) { busy = null; persist(); renderAll(); return 'auth'; }
    else msg.error = e.message === 'Failed to fetch' ? t('network') : e.message;
  } finally {
    const tEnd = performance.now();
    const n = usage ? usage.completion_tokens : null;
    msg.stats = {
      ttft: tFirst != null ? tFirst - t0 : null,
      tokps: n && n > 1 && tFirst != null && tEnd > tFirst ? (n - 1) / ((tEnd - tFirst) / 1000) : null,
      tokens: n, cached: usage?.prompt_tokens_details?.cached_tokens || 0, stopped: !!msg.stopped, finish,
    };
    busy = null;
    c.updated = Date.now();
    persist();
    renderAll();
  }
  return 'ok';
}

async function send(text) {
  text = text.trim();
  if (!text || busy) return;
  if (qeIsReset(text)) { // the terminal chat's rule (src/chat_reset.h, served as /reset.js)
    $('#input').value = '';
    autoGrow();
    newConv(); persist(); renderAll(); notice(t('reset'));
    return;
  }
  let c = conv();
  if (!c) c = newConv();
  if (!c.title) c.title = text.replace(/\s+/g, ' ').slice(0, 40);
  c.messages.push({ role: 'user', content: text });
  $('#input').value = '';
  autoGrow();
  const r = await ask(c);
  if (r === 'auth') { $('#input').value = text; autoGrow(); }
}

function regenerate() {
  const c = conv();
  if (!c || busy) return;
  while (c.messages.length && c.messages[c.messages.length - 1].role === 'assistant') c.messages.pop();
  if (!c.messages.length) return;
  ask(c);
}

// ---- settings ------------------------------------------------------------------------------------------------
function openSettings(note) {
  $('#set-system').value = settings.system;
  $('#set-temp').value = settings.temperature;
  $('#temp-out').value = Number(settings.temperature).toFixed(2);
  $('#set-max').value = settings.maxTokens;
  $('#set-rounds').value = settings.memoryRounds;
  $('#set-key').value = apiKey;
  const n = $('#settings-note');
  n.hidden = !note;
  n.textContent = note || '';
  const d = $('#settings');
  if (typeof d.showModal === 'function') d.showModal(); else d.setAttribute('open', '');
  if (note) $('#set-key').focus();
}

// Saved on the form's submit, which runs before the click that caused it returns; the dialog's 'close' event
// comes later, as a queued task, so a message sent right after Save could still go out with the old settings.
$('#settings-form').addEventListener('submit', (e) => {
  if (e.submitter?.value !== 'save') return;
  settings = {
    system: $('#set-system').value,
    temperature: Math.min(2, Math.max(0, Number($('#set-temp').value) || 0)),
    maxTokens: Math.max(1, Math.floor(Number($('#set-max').value) || DEFAULTS.maxTokens)),
    memoryRounds: Math.max(0, Math.floor(Number($('#set-rounds').value) || 0)),
  };
  save(LS.settings, settings);
  apiKey = $('#set-key').value.trim();
  if (apiKey) localStorage.setItem(LS.key, apiKey); else localStorage.removeItem(LS.key);
  loadModelName();
});
$('#set-temp').addEventListener('input', () => { $('#temp-out').value = Number($('#set-temp').value).toFixed(2); });

// ---- wiring ------------------------------------------------------------------------------------------------------
function autoGrow() {
  const ta = $('#input');
  ta.style.height = 'auto';
  ta.style.height = Math.min(ta.scrollHeight, 220) + 'px';
}
function closeSidebar() { document.body.classList.remove('side-open'); $('#scrim').hidden = true; }

$('#composer').addEventListener('submit', (e) => { e.preventDefault(); send($('#input').value); });
$('#input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send($('#input').value); }
});
$('#input').addEventListener('input', autoGrow);
$('#stop').addEventListener('click', () => { if (busy) busy.controller.abort(); });
const startNew = () => { if (busy) return; newConv(); persist(); renderAll(); closeSidebar(); $('#input').focus(); };
$('#new-chat').addEventListener('click', startNew);
$('#new-chat-top').addEventListener('click', startNew);
$('#open-settings').addEventListener('click', () => openSettings());
$('#menu').addEventListener('click', () => { document.body.classList.add('side-open'); $('#scrim').hidden = false; });
$('#scrim').addEventListener('click', closeSidebar);

async function loadModelName() {
  try {
    const r = await fetch('/v1/models', { headers: headers() });
    if (r.status === 401) { $('#model-name').textContent = ''; if (!apiKey) openSettings(t('needKey')); return; }
    if (r.status === 503) { // still loading the model: say so and look again
      $('#model-name').textContent = t('loading');
      setTimeout(loadModelName, 1000);
      return;
    }
    const j = await r.json();
    $('#model-name').textContent = j.data?.[0]?.id || '';
    ctxLen = Number(j.data?.[0]?.max_model_len) || 0;
  } catch { setTimeout(loadModelName, 2000); }
}

applyI18n();
// drop empty conversations left from earlier visits, except the current one
convs = convs.filter((c) => c.messages.length || c.id === current);
if (!conv()) current = convs[0]?.id || null;
renderAll();
loadModelName();
$('#input').focus();
