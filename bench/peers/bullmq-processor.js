// BullMQ sandboxed processor: runs in a child process of the BullMQ worker (one per concurrent job).
import { crashOnce, insertRow } from './handlers.js';

export default async function process(job) {
  switch (job.data.kind) {
    case 'echo':
      return job.data;
    case 'insert':
      return insertRow(job.data.url, job.data.schema, job.data.i);
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, job.data.ms));
      return null;
    case 'crashOnce':
      return crashOnce(job.attemptsMade === 0, job.data.pidFile);
    default:
      throw new Error(`unknown job kind ${job.data.kind}`);
  }
}
