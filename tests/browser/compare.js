// An annotator compares a pair in the real Argilla UI, in headless Debian chromium (playwright-core).
// Usage: node compare.js job.json
// job.json: {base, username, password, datasetId, labels: {question: label text}, justification,
//            screenshot, out}
// Signs in, opens the pairwise dataset's annotation page, reads the comparison field of the first pending
// pair (its iframe: each section's text and bounding box, to check A and B side by side), picks a label
// per criterion, types the justification, submits, and writes to job.out the page's and the field's text,
// every API answer the browser received (so the test can check no model name reached the annotator) and
// whether any record text ran as script (window.kasautiPwned, set only by script in the test's texts).
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    env: { ...process.env, FONTCONFIG_FILE: path.join(__dirname, 'fonts.conf') },
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const api = [];
  page.on('response', async (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) {
      try { api.push(await r.text()); } catch (e) { /* a body already gone (redirects) */ }
    }
  });

  await page.goto(`${job.base}/sign-in`, { waitUntil: 'networkidle' });
  await page.locator('input').first().fill(job.username);
  const pw = page.locator('input[type="password"]');
  await pw.fill(job.password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/sign-in'), { timeout: 30000 }), pw.press('Enter')]);
  await page.waitForLoadState('networkidle');
  const homeText = await page.locator('body').innerText();

  await page.goto(`${job.base}/dataset/${job.datasetId}/annotation-mode`, { waitUntil: 'networkidle' });
  const questions = Object.keys(job.labels);
  await page.locator(`[aria-label="Question: ${questions[0]}"]`).waitFor({ timeout: 30000 });
  const field = page.frameLocator('.custom_field_component iframe').first();
  await field.locator('#kasauti-b .text').waitFor({ timeout: 30000 });
  const sections = {};
  for (const key of ['prompt', 'a', 'b']) {
    sections[key] = { text: await field.locator(`#kasauti-${key} .text`).innerText(),
                      box: await field.locator(`#kasauti-${key}`).boundingBox() };
  }
  const fieldsText = await page.locator('body').innerText() + '\n' + await field.locator('body').innerText();

  for (const [question, label] of Object.entries(job.labels)) {
    await page.locator(`[aria-label="Question: ${question}"]`).getByText(label, { exact: true }).first().click();
  }
  if (job.justification) {
    const block = page.locator('[aria-label="Question: justification"]');
    await block.locator('.container').first().click();
    const editor = block.locator('textarea, [contenteditable="true"]').first();
    await editor.waitFor({ timeout: 10000 });
    await editor.fill(job.justification);  // fill(): keyboard.type garbles Indic scripts
  }
  await page.locator(`[aria-label="Question: ${questions[0]}"]`).click({ position: { x: 5, y: 5 } });
  await page.waitForTimeout(500);
  await page.screenshot({ path: job.screenshot, fullPage: false });

  const submit = page.getByRole('button', { name: /submit/i }).first();
  const saved = page.waitForResponse((r) => /\/api\/v1\/records\/[^/]+\/responses|\/api\/v1\/responses\//.test(r.url())
    && ['POST', 'PUT'].includes(r.request().method()), { timeout: 30000 });
  await submit.click();
  const resp = await saved;
  const saveBody = await resp.json();
  await page.waitForLoadState('networkidle');
  fs.writeFileSync(job.out, JSON.stringify({
    fieldsText, pageText: homeText + '\n' + fieldsText + '\n' + await page.locator('body').innerText(),
    apiText: api.join('\n'), saveStatus: resp.status(), saveBody, sections,
    pwned: await page.evaluate(() => window.kasautiPwned || null),
  }));
  await browser.close();
})().catch((e) => { console.error('FAILED', e); process.exit(1); });
