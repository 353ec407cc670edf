// node examples/api/map.mjs: map a function over files from TypeScript (or JavaScript), then
// gather what it returned. State goes to .fanout/ in the current folder, like `fanout run`.
import { readdirSync } from 'node:fs';
import { Fanout } from 'fanout';

const data = new URL('../per-file/data/', import.meta.url);
const files = readdirSync(data)
  .sort()
  .map((name) => new URL(name, data).pathname);

const fo = await Fanout.open();
const run = await fo.map(new URL('./work.mjs', import.meta.url), 'countWords', files, {
  resources: { memory: '200MB', time: '1m' },
});
for await (const { counts, total } of run.progress()) {
  console.error(`run ${run.id}: ${counts.succeeded + counts.skipped}/${total} done, ${counts.failed} failed`);
}
for (const task of await run.gather()) {
  console.log(task.state === 'failed' ? `${task.name}\tfailed: ${task.error.message}` : `${task.value.file}\t${task.value.lines}\t${task.value.words}`);
}
await fo.close();
