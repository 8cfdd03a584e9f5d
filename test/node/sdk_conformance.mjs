// Drives the Gemini simulator with the official @google/genai SDK, unmodified,
// through its base-URL option. Exits non-zero on any mismatch.
//   node sdk_conformance.mjs http://127.0.0.1:PORT KEY
import { createHash } from 'node:crypto';
import { GoogleGenAI, FileState } from '@google/genai';

const [baseUrl, apiKey] = process.argv.slice(2);
if (!baseUrl || !apiKey) {
  console.error('usage: node sdk_conformance.mjs BASE_URL API_KEY');
  process.exit(2);
}

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    console.log(`FAIL ${what}`);
    failures++;
  }
}

const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl } });

async function main() {
  // Upload: 9 MiB + 5 bytes, so that the SDK sends one 8 MiB chunk, then "upload, finalize".
  const size = 9 * 1024 * 1024 + 5;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
  const blob = new Blob([bytes], { type: 'video/mp4' });
  const uploaded = await ai.files.upload({ file: blob, config: { displayName: 'Big Buck Bunny', mimeType: 'video/mp4' } });
  check(/^files\/[a-z0-9]{12}$/.test(uploaded.name ?? ''), `upload returns a 12-character name (${uploaded.name})`);
  check(uploaded.displayName === 'Big Buck Bunny', 'upload keeps displayName');
  check(uploaded.mimeType === 'video/mp4', 'upload keeps mimeType');
  check(uploaded.sizeBytes === String(size), `sizeBytes is the size as a string (${uploaded.sizeBytes})`);
  const hex = createHash('sha256').update(bytes).digest('hex');
  check(uploaded.sha256Hash === Buffer.from(hex).toString('base64'), 'sha256Hash is base64 of the hex digest');
  check(uploaded.state === FileState.PROCESSING || uploaded.state === FileState.ACTIVE, `state after upload (${uploaded.state})`);
  const created = Date.parse(uploaded.createTime);
  const expires = Date.parse(uploaded.expirationTime);
  check(Math.abs(expires - created - 48 * 3600 * 1000) < 1000, 'expirationTime is createTime + 48h');

  // The SDK sent its bytes in an 8 MiB chunk, then "upload, finalize".
  const stats = await (await fetch(`${baseUrl}/admin/stats`)).json();
  check(stats.routes?.upload_chunk?.requests === 2, `two chunk requests (${stats.routes?.upload_chunk?.requests})`);

  // Poll files.get until ACTIVE.
  let file = uploaded;
  let polls = 0;
  const started = Date.now();
  while (file.state !== FileState.ACTIVE && Date.now() - started < 20000) {
    await new Promise((r) => setTimeout(r, 50));
    file = await ai.files.get({ name: uploaded.name });
    polls++;
  }
  check(file.state === FileState.ACTIVE, `files.get reaches ACTIVE after ${polls} polls`);
  check(file.name === uploaded.name, 'files.get returns the same name');

  // generateContent with the file.
  const answer = await ai.models.generateContent({
    model: 'gemini-2.0-flash',
    contents: [{ role: 'user', parts: [{ text: 'Describe this clip' }, { fileData: { fileUri: file.uri, mimeType: file.mimeType } }] }],
  });
  check(typeof answer.text === 'string' && answer.text.length > 0, 'generateContent returns text');
  check(answer.usageMetadata && answer.usageMetadata.totalTokenCount > 0, 'generateContent returns usageMetadata');
  check(answer.candidates?.[0]?.finishReason === 'STOP', 'candidate finishReason is STOP');

  // list: our file is there (paging through the SDK's pager).
  const names = [];
  const pager = await ai.files.list({ config: { pageSize: 2 } });
  for await (const f of pager) names.push(f.name);
  check(names.includes(uploaded.name), `files.list includes the file (${names.length} files)`);

  // delete, then get fails with 403.
  await ai.files.delete({ name: uploaded.name });
  let status = 0;
  try {
    await ai.files.get({ name: uploaded.name });
  } catch (e) {
    status = e.status ?? 0;
  }
  check(status === 403, `files.get after delete fails with 403 (${status})`);

  // A wrong key fails with 400.
  const bad = new GoogleGenAI({ apiKey: 'wrong-' + apiKey, httpOptions: { baseUrl } });
  status = 0;
  try {
    await bad.files.list();
  } catch (e) {
    status = e.status ?? 0;
  }
  check(status === 400, `a wrong key fails with 400 (${status})`);
}

main()
  .then(() => {
    if (failures) {
      console.log(`${failures} check(s) failed`);
      process.exit(1);
    }
    console.log('all checks passed');
  })
  .catch((e) => {
    console.log(`FAIL unexpected error: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  });
