#!/usr/bin/env node
// AWS's own state-machine checks on each definition named on the command line:
// amazon-states-language-service (the validator behind AWS's editor tooling) and
// asl-validator (the ASL JSON schemas). Prints one line per diagnostic as
// `file:line:col: [tool] message`; exit 1 when any was found, 2 on a usage error.
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
  return isValid ? [] : errors.map((e) => `${file}: [asl-validator] ${e["Error code"]}: ${e.Message}`);
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: validate.js DEFINITION.asl.json ...");
    return 2;
  }
  let found = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    const lines = [...(await languageServiceDiagnostics(file, text)), ...schemaDiagnostics(file, text)];
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
