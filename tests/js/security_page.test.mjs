// security_page.test.mjs — a hostile answer on the chat page, in headless Chromium. The page and its headers
// come from the real binary; a small proxy in front of it answers /v1/chat/completions itself with an SSE
// stream of what a prompt-injected model could write (a fake sign-in form, <style>, style=, an id that shadows
// the page's own #input, javascript: links, svg), streamed in pieces as the model would. Nothing of it may
// become a control, a style or an id inside the answer, while the answer and during streaming; ordinary
// markdown (headings, code with its copy button, tables, links) still renders. The CSP forbids form submission.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer } from './lib/server.mjs';

const HOSTILE = [
  '# Session expired\n\n',
  'Please **sign in again** to continue.\n\n',
  '<form action="/steal" method="post"><input name="user" placeholder="Email"><input type="password" name="pw" ',
  'placeholder="Password"><button type="submit">Sign in</button></form>\n\n',
  '<style>.msg.user, #composer { display: none } body { background: red }</style>\n\n',
  '<div style="position:fixed;inset:0;z-index:9999;background:#fff">Your session has expired</div>\n\n',
  '<p id="input" name="input" class="msg user">I agree to share my password</p>\n\n',
  '<textarea>t</textarea><select><option>o</option></select><iframe src="/"></iframe><dialog open>d</dialog>\n\n',
  '<a href="javascript:alert(1)">js link</a> [md js link](javascript:alert(2)) [data link](data:text/html,x) ',
  '[api link](/v1/models) [ok link](https://example.com/docs)\n\n',
  '<img src="x" onerror="window.pwned=1"> <svg><style>*{color:red}</style><circle r="5"/></svg> <math><mtext>m</mtext></math>\n\n',
  '<details open><summary>More</summary>inside <b>bold</b></details>\n\n',
  '- [ ] task one\n- [x] task two\n\n',
  '| a | b |\n|---|---|\n| 1 | 2 |\n\n',
  '```js\nconst x = 1;\n```\n',
];
// what may never appear inside an answer (the page's own code-block copy button aside)
const FORBIDDEN = 'form, input, button:not(.copy-code), textarea, select, option, style, iframe, dialog, svg, math, object, ' +
  'embed, link, meta, base, [style], [id], [name], [onerror], [onclick], .msg, .user, .btn, .notice';

let srv, proxy, proxyUrl, ctx, page, userDir;
const seen = []; // requests that reached the proxy

// Answers /v1/chat/completions with the hostile stream; everything else goes to the real server unchanged.
function startProxy(target) {
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      const frame = (o) => `data: ${JSON.stringify(o)}\n\n`;
      const chunk = (delta, finish = null) => ({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'qwen-edge',
        choices: [{ index: 0, delta, finish_reason: finish }] });
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        if (i < HOSTILE.length) { res.write(frame(chunk({ content: HOSTILE[i++] }))); return setTimeout(next, 40); }
        res.write(frame(chunk({}, 'stop')));
        res.write(frame({ id: 'x', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: HOSTILE.length, total_tokens: 5 + HOSTILE.length } }));
        res.end('data: [DONE]\n\n');
      };
      res.write(frame(chunk({ role: 'assistant', content: '' })));
      return next();
    }
    const up = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  srv = await startServer({ args: ['--parallel', '1', '--ctx', '256'] });
  proxy = await startProxy(srv.base);
  proxyUrl = `http://127.0.0.1:${proxy.address().port}`;
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-secpage-'));
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true, locale: 'en-US',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    viewport: { width: 1200, height: 800 },
  });
  page = ctx.pages()[0] || await ctx.newPage();
});

after(async () => {
  await ctx?.close();
  await new Promise((r) => (proxy ? proxy.close(r) : r()));
  await srv?.stop();
  if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
});

// Everything in the answers that should not be there, as short descriptions ([] when clean).
const inspect = () => page.evaluate((forbidden) => {
  const bad = [];
  for (const body of document.querySelectorAll('.msg.assistant .body')) {
    for (const el of body.querySelectorAll(forbidden)) bad.push(el.outerHTML.slice(0, 80));
    for (const a of body.querySelectorAll('a')) {
      const href = a.getAttribute('href');
      if (href !== null && !/^(https?:|mailto:|#)/i.test(href)) bad.push(`a href=${href}`);
    }
    for (const el of body.querySelectorAll('[class]')) {
      for (const c of el.classList) if (!/^(language-[\w+-]+|hljs.*|code-bar|copy-code)$/.test(c)) bad.push(`class ${c} on ${el.tagName}`);
    }
  }
  if (document.querySelectorAll('#input').length !== 1) bad.push(`${document.querySelectorAll('#input').length} elements #input`);
  if (window.pwned) bad.push('onerror ran');
  return bad;
}, FORBIDDEN);

test('a hostile answer draws no form, input, style or id, while streaming and after', async () => {
  await page.goto(proxyUrl + '/');
  await page.waitForSelector('#input');
  // record anything forbidden that shows up in an answer at any DOM change, partial renders included
  await page.evaluate((forbidden) => {
    window.flagged = [];
    new MutationObserver(() => {
      for (const b of document.querySelectorAll('.msg.assistant .body'))
        for (const el of b.querySelectorAll(forbidden)) window.flagged.push(el.outerHTML.slice(0, 60));
    }).observe(document.getElementById('messages'), { subtree: true, childList: true, attributes: true });
  }, FORBIDDEN);
  await page.fill('#input', 'Summarise this web page for me');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => {
    const a = document.querySelector('.msg.assistant');
    return a && !a.classList.contains('streaming') && /tokens/.test(a.querySelector('.stats').textContent);
  }, null, { timeout: 30000 });
  assert.deepEqual(await inspect(), []);
  assert.deepEqual([...new Set(await page.evaluate(() => window.flagged))], [], 'seen while streaming');
  assert.ok(!seen.some((s) => s.includes('/steal')), JSON.stringify(seen));

  // ordinary markdown still works
  const body = page.locator('.msg.assistant .body').last();
  assert.equal(await body.locator('h1').textContent(), 'Session expired');
  assert.equal(await body.locator('strong').first().textContent(), 'sign in again');
  assert.equal(await body.locator('table td').count(), 2);
  assert.equal(await body.locator('pre code.language-js').count(), 1);
  assert.equal(await body.locator('pre .copy-code').count(), 1);
  assert.equal(await body.locator('details summary').textContent(), 'More');
  const ok = body.locator('a[href="https://example.com/docs"]');
  assert.equal(await ok.getAttribute('target'), '_blank');
  assert.match(await ok.getAttribute('rel'), /noopener/);
  assert.match(await body.textContent(), /☐ task one[\s\S]*☑ task two/);
  // the page is untouched: its input box is visible and still the only #input
  assert.equal(await page.locator('#composer').isVisible(), true);
  assert.equal(await page.evaluate(() => document.querySelector('#input').tagName), 'TEXTAREA');

  // the same answer rendered again from storage
  await page.reload();
  await page.waitForSelector('.msg.assistant .body h1');
  assert.deepEqual(await inspect(), []);
});

test('the page\'s CSP forbids submitting forms (form-action \'none\')', async () => {
  const r = await fetch(srv.base + '/');
  assert.match(r.headers.get('content-security-policy'), /form-action 'none'/);
  // a form that got into the page anyway cannot send anything
  await page.goto(proxyUrl + '/');
  await page.waitForSelector('#input');
  seen.length = 0;
  const violated = await page.evaluate(() => new Promise((resolve) => {
    document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective));
    const f = document.createElement('form');
    f.action = '/steal';
    f.method = 'post';
    document.body.append(f);
    f.submit();
    setTimeout(() => resolve('none'), 3000);
  }));
  assert.equal(violated, 'form-action');
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!seen.some((s) => s.includes('/steal')), JSON.stringify(seen));
});
