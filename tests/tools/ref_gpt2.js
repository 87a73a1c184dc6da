#!/usr/bin/env node
// Expected GPT-2 ids from an independent implementation: the npm package
// gpt-3-encoder (MIT; OpenAI's encoder.py ported to JavaScript, same vocabulary).
//
// Usage: NODE_PATH=/tmp/npmx/node_modules node tests/tools/ref_gpt2.js \
//            tests/data/tokenizers/cases.json tests/data/tokenizers/expected_gpt2.json
// Setup:  mkdir -p /tmp/npmx && cd /tmp/npmx && npm init -y && npm install gpt-3-encoder
'use strict';
const fs = require('fs');
const path = require('path');

const [casesPath, outPath] = process.argv.slice(2);
if (!casesPath || !outPath) {
  console.error('usage: ref_gpt2.js cases.json expected_gpt2.json');
  process.exit(2);
}
const { encode } = require('gpt-3-encoder');
const encoderJson = path.join(path.dirname(require.resolve('gpt-3-encoder')), 'encoder.json');
const vocab = JSON.parse(fs.readFileSync(encoderJson, 'utf-8'));
const idToToken = {};
for (const [tok, id] of Object.entries(vocab)) idToToken[id] = tok;

const cases = JSON.parse(fs.readFileSync(casesPath, 'utf-8')).cases;
const out = [];
for (const c of cases) {
  if ((c.skip || []).includes('gpt2')) continue;
  const ids = encode(c.text);
  out.push({ name: c.name, text: c.text, ids, tokens: ids.map((id) => idToToken[id]) });
}
const doc = {
  about: 'GPT-2 ids from gpt-3-encoder ' +
      require('gpt-3-encoder/package.json').version + ' via tests/tools/ref_gpt2.js',
  cases: out,
};
fs.writeFileSync(outPath, JSON.stringify(doc, null, 1) + '\n');
console.log(`wrote ${out.length} cases to ${outPath}`);
