#!/usr/bin/env node
// The Amazon States Language validators, on each definition named on the command line:
// AWS's amazon-states-language-service (the validator behind the AWS Toolkit's ASL editor)
// and the community asl-validator (the ASL JSON schemas and graph checks). Prints one line
// per diagnostic as `file:line:col: [tool] message` (asl-validator gives no position); exit 1
// when any was found, 2 on a usage error.
"use strict";

const fs = require("fs");
const path = require("path");
const aslValidator = require("asl-validator");
const { getLanguageService, TextDocument } = require("amazon-states-language-service");

async function languageServiceDiagnostics(file, text) {
  const service = getLanguageService({});
  const document = TextDocument.create(`file://${path.resolve(file)}`, "json", 0, text);
  const diagnostics = await service.doValidation(document, service.parseJSONDocument(document));
  return diagnostics.map((d) => {
    const { line, character } = d.range.start;
    return `${file}:${line + 1}:${character + 1}: [amazon-states-language-service] ${d.message}`;
  });
}

function schemaDiagnostics(file, text) {
  let definition;
  try {
    definition = JSON.parse(text);
  } catch (error) {
    return [`${file}: [asl-validator] not JSON: ${error.message}`];
  }
  const { isValid, errors } = aslValidator(definition, { checkArn: true, checkPaths: true });
  if (isValid) return [];
  return errors.map((e) => `${file}: [asl-validator] ${e["Error code"]}: ${e.Message}`);
}

// A validator that throws on a malformed definition (asl-validator does on a state that is
// not an object) must not hide the other files' results: its crash is that file's finding.
async function guarded(tool, file, run) {
  try {
    return await run();
  } catch (error) {
    return [`${file}: [${tool}] cannot check this definition: ${error.message || error}`];
  }
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: validate.js DEFINITION.asl.json ...");
    return 2;
  }
  let found = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      console.log(`${file}: cannot read the definition: ${error.message}`);
      found += 1;
      continue;
    }
    // asl-validator can report one problem several times, once for each schema it tried.
    const lines = [
      ...new Set([
        ...(await guarded("amazon-states-language-service", file, () =>
          languageServiceDiagnostics(file, text),
        )),
        ...(await guarded("asl-validator", file, () => schemaDiagnostics(file, text))),
      ]),
    ];
    lines.forEach((line) => console.log(line));
    found += lines.length;
    if (lines.length === 0) console.log(`ok: ${file}: 0 diagnostics from both validators`);
  }
  return found === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`validate.js: ${error.stack || error}`);
    process.exit(2);
  },
);
