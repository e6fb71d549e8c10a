import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** s3rver's surface as these tests use it (the package ships no types). */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (o: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string; configs: never[] }[];
}) => S3rverInstance;

export interface TestS3 {
  endpoint: string;
  bucket: string;
  port: number;
  /** Stops the server, waits for it, deletes its files. */
  stop(): Promise<void>;
  /** Stops serving (an outage), keeping the objects; up() serves them again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
}

/**
 * s3rver (an S3-compatible fake: it stores objects, lists and deletes them, and ignores Object
 * Lock) on an ephemeral loopback port, its objects in a temp dir, one bucket created.
 */
export async function startS3(bucket = 'tg-evidence'): Promise<TestS3> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tg-s3-'));
  const make = (port: number) => new S3rver({ port, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
  let server: S3rverInstance | null = make(0);
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    port,
    async stop() {
      await server?.close();
      server = null;
      rmSync(dir, { recursive: true, force: true });
    },
    async down() {
      await server?.close();
      server = null;
    },
    async up() {
      server ??= make(port);
      await server.run();
    },
  };
}

/** The credentials s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
