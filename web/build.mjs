// Bundles the spectator page: `node build.mjs <node_modules> <out>` writes the page's
// index.html and its assets, each named by a hash of its content, into <out>. Run by
// stream/build.rs, which embeds <out> in the stream hub's binary.
import { readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [modules, out] = process.argv.slice(2).map((p) => p && resolve(p));
if (!modules || !out) {
  console.error('usage: node build.mjs <node_modules folder> <output folder>');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
// esbuild from the given node_modules (the build installs it outside the source tree).
const esbuild = await import(pathToFileURL(join(modules, 'esbuild/lib/main.js')).href);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: ['src/app.js'],
  nodePaths: [modules],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'esm',
  target: ['chrome109', 'firefox115', 'safari15'],
  outdir: out,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const page = readFileSync(join(here, 'src/index.html'), 'utf8')
  .replace('__APP_JS__', `/assets/${js}`)
  .replace('__APP_CSS__', `/assets/${css}`);
writeFileSync(join(out, 'index.html'), page);
