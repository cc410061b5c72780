/**
 * The process stopSync() starts to send the last profiles of a process that is exiting
 * (whose event loop will not run again): reads {options, deadlineMs, items} as JSON on
 * stdin, sends the items with the ordinary uploader within the deadline, and prints the
 * uploader's stats as JSON.
 */
import { Uploader, type UploadItem, type UploaderOptions } from './uploader';

const chunks: Buffer[] = [];
process.stdin.on('data', (c: Buffer) => chunks.push(c));
process.stdin.on('end', () => {
  const job = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { options: Omit<UploaderOptions, 'warn'>; deadlineMs: number; items: Array<Omit<UploadItem, 'body'> & { body: string }> };
  const up = new Uploader({ ...job.options, maxPending: Math.max(job.options.maxPending, job.items.length), warn: () => {} });
  for (const i of job.items) up.enqueue({ ...i, body: Buffer.from(i.body, 'base64') });
  void up.flush(job.deadlineMs).then(() => {
    process.stdout.write(JSON.stringify(up.stats()));
  });
});
