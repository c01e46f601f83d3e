// page.test.mjs — the chat page in headless Chromium (playwright-core, Debian's /usr/bin/chromium): open it,
// send a message and watch tokens stream in, stop, new chat, "重新开始", reload keeps the conversation list,
// settings, the phone layout, no request leaving 127.0.0.1; screenshots go to QE_TEST_TMP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, TMP } from './lib/server.mjs';

let srv, ctx, page, userDir;
const external = [];

before(async () => {
  srv = await startServer({ args: ['--parallel', '2', '--ctx', '1024'] });
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-page-'));
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true, locale: 'en-US',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    viewport: { width: 1200, height: 800 },
  });
  // short answers: the tiny test model is slow with the reference kernels
  await ctx.addInitScript(() => {
    if (!localStorage.getItem('qe.settings')) localStorage.setItem('qe.settings', JSON.stringify({ maxTokens: 6 }));
  });
  ctx.on('request', (req) => { if (/^(https?|wss?):/.test(req.url()) && !req.url().startsWith('http://127.0.0.1:')) external.push(req.url()); });
  page = ctx.pages()[0] || await ctx.newPage();
});

after(async () => {
  await ctx?.close();
  await srv?.stop();
  fs.rmSync(userDir, { recursive: true, force: true });
});

const assistant = () => page.locator('.msg.assistant');

test('opens with the libraries from the binary and no outside requests', async () => {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(srv.base + '/');
  await page.waitForSelector('#input');
  assert.equal(await page.evaluate(() => typeof window.marked + typeof window.DOMPurify + typeof window.hljs), 'objectfunctionobject');
  assert.equal(await page.locator('#new-chat').textContent(), 'New chat');
  assert.deepEqual(errors, []);
});

test('send a message: tokens stream in, markdown renders, stats shown', async () => {
  // record the answer's length at every DOM change: streaming shows it growing in several steps
  await page.evaluate(() => localStorage.setItem('qe.settings', JSON.stringify({ maxTokens: 40 })));
  await page.reload();
  await page.evaluate(() => {
    window.lengths = [];
    new MutationObserver(() => {
      const b = document.querySelector('.msg.assistant.streaming .body');
      if (b) window.lengths.push(b.textContent.length);
    }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
  });
  await page.fill('#input', 'Hello there');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.msg.user');
  assert.equal(await page.locator('.msg.user .body').first().textContent(), 'Hello there');
  await page.waitForFunction(() => document.querySelector('.msg.assistant') && !document.querySelector('.msg.assistant.streaming'), null, { timeout: 60000 });
  const lengths = [...new Set(await page.evaluate(() => window.lengths))].filter((n) => n > 0);
  assert.ok(lengths.length >= 3, `the answer grew in steps: ${lengths.slice(0, 10)}`);
  const stats = await assistant().last().locator('.stats').textContent();
  assert.match(stats, /first token \d+\.\d\d s/);
  assert.match(stats, /tokens/);
  assert.ok((await assistant().last().locator('.body').textContent()).length > 0);
  assert.equal(await page.locator('#send').isVisible(), true);
  await page.screenshot({ path: path.join(TMP, 'page-desktop.png') });
});

test('stop ends a long answer early and keeps what came', async () => {
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('qe.settings') || '{}');
    localStorage.setItem('qe.settings', JSON.stringify({ ...s, maxTokens: 5000 }));
  });
  await page.reload();
  // over the server's context (1024): the page keeps max_tokens under max_model_len from /v1/models
  await page.waitForFunction(() => document.getElementById('model-name').textContent.length > 0);
  await page.fill('#input', 'Write a very long story');
  await page.click('#send');
  await page.waitForSelector('#stop:not([hidden])');
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll('.msg.assistant .body')].pop();
    return b && b.textContent.length > 5;
  }, null, { timeout: 60000 });
  await page.click('#stop');
  await page.waitForSelector('#send:not([hidden])');
  const stats = await assistant().last().locator('.stats').textContent();
  assert.match(stats, /stopped/);
  assert.equal(await assistant().last().locator('.error-line').count(), 0);
  assert.ok((await assistant().last().locator('.body').textContent()).length > 0);
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('qe.settings') || '{}');
    localStorage.setItem('qe.settings', JSON.stringify({ ...s, maxTokens: 6 }));
  });
  await page.reload();
});

test('regenerate replaces the last answer', async () => {
  const before = await assistant().count();
  assert.match(await assistant().last().locator('.stats').textContent(), /stopped/);
  await assistant().last().locator('.regenerate').click();
  await page.waitForFunction(() => {
    const a = [...document.querySelectorAll('.msg.assistant')].pop();
    return a && !a.classList.contains('streaming') && !/stopped/.test(a.querySelector('.stats').textContent) &&
      /tokens/.test(a.querySelector('.stats').textContent);
  }, null, { timeout: 60000 });
  assert.equal(await assistant().count(), before);
});

test('new chat, then reload keeps the conversation list', async () => {
  await page.click('#new-chat');
  assert.equal(await page.locator('.msg').count(), 0);
  await page.fill('#input', 'Second conversation');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('.msg.assistant') && !document.querySelector('.msg.assistant.streaming'), null, { timeout: 60000 });
  assert.equal(await page.locator('.conv-item').count(), 2);
  await page.reload();
  await page.waitForSelector('.conv-item');
  assert.equal(await page.locator('.conv-item').count(), 2);
  const titles = await page.locator('.conv-title').allTextContents();
  assert.ok(titles.includes('Second conversation') && titles.includes('Hello there'), titles.join('|'));
  // switching back shows the first conversation
  await page.locator('.conv-title', { hasText: 'Hello there' }).click();
  assert.equal(await page.locator('.msg.user .body').first().textContent(), 'Hello there');
});

test('typing 重新开始 starts over without sending', async () => {
  const n = await page.locator('.conv-item').count();
  await page.fill('#input', '重新开始');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.notice');
  assert.equal(await page.locator('.msg').count(), 0);
  assert.equal(await page.evaluate(() => document.getElementById('input').value), '');
  // the empty conversation is not listed until it has a message
  await page.fill('#input', 'after reset');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !document.querySelector('.msg.assistant.streaming') && document.querySelector('.msg.assistant'), null, { timeout: 60000 });
  assert.equal(await page.locator('.conv-item').count(), n + 1);
});

test('settings are kept; markdown code blocks get highlighting and a copy button', async () => {
  await page.click('#open-settings');
  await page.fill('#set-system', 'Answer briefly.');
  await page.fill('#set-rounds', '2');
  await page.click('#save-settings');
  const s = await page.evaluate(() => JSON.parse(localStorage.getItem('qe.settings')));
  assert.equal(s.system, 'Answer briefly.');
  assert.equal(s.memoryRounds, 2);
  // render a stored answer with code (the tiny model writes random text, so put one in storage)
  await page.evaluate(() => {
    const convs = JSON.parse(localStorage.getItem('qe.convs'));
    convs[0].messages.push({ role: 'user', content: 'code please' },
      { role: 'assistant', content: 'Here:\n\n```python\ndef f(x):\n    return x * 2\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<img src=x onerror="window.pwned=1">', stats: { ttft: 120, tokps: 33.3, tokens: 20 } });
    localStorage.setItem('qe.convs', JSON.stringify(convs));
    localStorage.setItem('qe.current', convs[0].id);
  });
  await page.reload();
  await page.waitForSelector('pre code.hljs');
  assert.ok(await page.locator('pre code .hljs-keyword').count() >= 1);
  assert.equal(await page.locator('pre .copy-code').count(), 1);
  assert.equal(await page.locator('.body table').count(), 1);
  assert.equal(await page.evaluate(() => window.pwned), undefined, 'DOMPurify removed the handler');
  assert.match(await assistant().last().locator('.stats').textContent(), /0\.12 s · 33\.3 tok\/s · 20 tokens/);
  await page.screenshot({ path: path.join(TMP, 'page-markdown.png') });
});

test('API key: the page asks for it and keeps it', async () => {
  const keyed = await startServer({ env: { QWEN_EDGE_API_KEY: 'k-42' } });
  const p = await ctx.newPage();
  try {
    await p.goto(keyed.base + '/');
    await p.waitForSelector('#settings[open]');
    assert.match(await p.locator('#settings-note').textContent(), /API key/);
    await p.fill('#set-key', 'k-42');
    await p.click('#save-settings');
    await p.fill('#input', 'hi');
    await p.keyboard.press('Enter');
    await p.waitForFunction(() => document.querySelector('.msg.assistant') && !document.querySelector('.msg.assistant.streaming'), null, { timeout: 60000 });
    assert.equal(await p.locator('.error-line').count(), 0);
    assert.equal(await p.evaluate(() => localStorage.getItem('qe.apiKey')), 'k-42');
  } finally {
    await p.close();
    await keyed.stop();
  }
});

test('Chinese UI follows the browser language; phone layout', async () => {
  const zh = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
  try {
    const c = await zh.newContext({ locale: 'zh-CN', viewport: { width: 390, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    await c.addInitScript(() => localStorage.setItem('qe.settings', JSON.stringify({ maxTokens: 6 })));
    const p = await c.newPage();
    await p.goto(srv.base + '/');
    assert.equal(await p.locator('#new-chat').textContent(), '新对话');
    assert.equal(await p.locator('#sidebar').isVisible(), true); // present but off-screen
    const box = await p.locator('#sidebar').boundingBox();
    assert.ok(box.x + box.width <= 1, 'sidebar is slid away on a phone');
    await p.fill('#input', '你好');
    await p.locator('#send').tap();
    await p.waitForFunction(() => document.querySelector('.msg.assistant') && !document.querySelector('.msg.assistant.streaming'), null, { timeout: 60000 });
    const inputBox = await p.locator('#composer').boundingBox();
    assert.ok(inputBox.y + inputBox.height <= 780 + 1 && inputBox.width <= 390);
    await p.screenshot({ path: path.join(TMP, 'page-phone.png') });
    await p.locator('#menu').tap();
    await p.waitForTimeout(300);
    assert.ok((await p.locator('#sidebar').boundingBox()).x >= 0);
    await c.close();
  } finally {
    await zh.close();
  }
});

test('nothing left the machine', () => {
  assert.deepEqual(external, []);
});
