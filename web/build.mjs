// Bundles src/watch.js (with d3-geo and topojson-client) and copies Natural Earth's 1:50m countries
// from the world-atlas package into ogc_upscaler/watch/static/build/, where the watch page loads them.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "ogc_upscaler", "watch", "static", "build");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "watch.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outfile: join(out, "watch.js"),
  legalComments: "eof",
  logLevel: "warning",
});
copyFileSync(join(here, "node_modules", "world-atlas", "countries-50m.json"), join(out, "world.json"));
console.log(`built ${out}`);
