// reset_rule.test.mjs — "重新开始" as an input method types it ("重新开始。", "重新开始！", full-width spaces around)
// starts over in the terminal chat and on the page alike: one list (src/chat_reset.h) read by the C rule and, through
// the generated /reset.js, by the page. The same table of cases goes through both, then through the real page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { chromium } from 'playwright-core';
import { startServer, BIN } from './lib/server.mjs';
import { makeModel } from './lib/models.mjs';

const RESET_OUT = '(conversation cleared / 已重新开始)';
// [text, starts over?]; no '\n' inside: the terminal chat reads a pipe line by line
const CASES = [
  ['重新开始', true], ['重新开始。', true], ['重新开始！', true], ['重新开始!', true], ['重新开始？', true],
  ['\u3000重新开始\u3000', true], ['\u3000重新开始。\u3000', true], [' 重新开始 ！ ', true], ['\t重新开始。。', true],
  ['/reset', true], ['/RESET', true], ['/reset.', true], ['/new', true], ['/New!', true],
  ['请重新开始', false], ['重新开始吧', false], ['重新开始。吧', false], ['！重新开始', false], ['。', false],
  ['/reset now', false], ['reset', false], ['重新 开始', false],
];

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

test('the terminal chat (C) and the page (/reset.js) agree on every case', async () => {
  const js = await (await fetch(srv.base + '/reset.js')).text();
  const ctx = vm.createContext({});
  vm.runInContext(js + '\nglobalThis.isReset = qeIsReset;', ctx);
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const wrong = [];
  for (const [text, want] of CASES) {
    const out = execFileSync(BIN, ['chat', '-m', model, '-n', '1', '--temp', '0', '-t', '1'],
                             { input: text + '\n', encoding: 'utf8', timeout: 60000 });
    const c = out.includes(RESET_OUT), page = ctx.isReset(text);
    if (c !== want || page !== want) wrong.push(`${JSON.stringify(text)}: want ${want}, terminal ${c}, page ${page}`);
  }
  assert.deepEqual(wrong, []);
});

test('the page: "　重新开始。" typed with an input method starts over without sending', async () => {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-reset-'));
  const browser = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  try {
    await browser.addInitScript(() => localStorage.setItem('qe.settings', JSON.stringify({ maxTokens: 2 })));
    const page = browser.pages()[0] || await browser.newPage();
    await page.goto(srv.base + '/');
    await page.fill('#input', 'hello');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => !document.querySelector('.msg.assistant.streaming') && document.querySelector('.msg.assistant'), null, { timeout: 60000 });
    for (const text of ['\u3000重新开始。', '重新开始！']) {
      await page.fill('#input', text);
      await page.keyboard.press('Enter');
      await page.waitForSelector('.notice');
      assert.equal(await page.locator('.msg').count(), 0, `${text}: the conversation is cleared, nothing sent`);
      assert.equal(await page.evaluate(() => document.getElementById('input').value), '');
    }
  } finally {
    await browser.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});
