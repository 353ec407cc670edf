// A real S3-protocol server (s3rver) for the tests, run as its own process so that worker
// processes spawned by the tests reach it too. Usage: node s3-server.mjs <data folder> [port]
// (a port to come back on after a stop, for outage tests; default any free one).
// Prints one line, `{"endpoint":"http://127.0.0.1:<port>"}`, once it listens; stops on SIGTERM
// or when its parent goes away (stdin closes), so a killed test run leaves no server behind.
import S3rver from 's3rver';
import { requireValidSignatures } from './s3-signature-check.mjs';

const directory = process.argv[2];
if (!directory) {
  console.error('usage: node s3-server.mjs <data folder>');
  process.exit(2);
}

// s3rver knows one account, S3RVER/S3RVER, and refuses other access key ids; the signature
// check, put first in its middleware chain, refuses a wrong secret key as real S3 does.
const server = new S3rver({ address: '127.0.0.1', port: Number(process.argv[3] ?? 0), silent: true, directory });
server.middleware.unshift(requireValidSignatures({ S3RVER: 'S3RVER' }));
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ endpoint: `http://127.0.0.1:${port}` })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
