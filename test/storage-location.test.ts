import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { pathInside } from '../src/storage/local-files.js';
import { isObjectStoreUri, joinLocation, parseObjectStoreUri, resolveLocation } from '../src/storage/location.js';

describe('storage locations', () => {
  it('tells s3:// URIs from local paths', () => {
    expect(isObjectStoreUri('s3://bucket/prefix')).toBe(true);
    expect(isObjectStoreUri('/data/work')).toBe(false);
    expect(isObjectStoreUri('work/s3://x')).toBe(false);
  });

  it('joins object keys with single slashes and local paths as paths', () => {
    expect(joinLocation('s3://b/p', 'a/b')).toBe('s3://b/p/a/b');
    expect(joinLocation('s3://b/p/', '/a/', 'c')).toBe('s3://b/p/a/c');
    expect(joinLocation('s3://b', 'x')).toBe('s3://b/x');
    expect(joinLocation('s3://b/p', '', 'x')).toBe('s3://b/p/x');
    expect(joinLocation('/work', 'runs', '../1')).toBe('/work/1');
    expect(joinLocation('work', 'a/b')).toBe('work/a/b');
  });

  it('resolves a folder against a base folder and keeps an object-storage URI as written', () => {
    expect(resolveLocation('/jobs/a', 'work')).toBe('/jobs/a/work');
    expect(resolveLocation('/jobs/a', '../shared/work')).toBe('/jobs/shared/work');
    expect(resolveLocation('/jobs/a', '/scratch/w')).toBe('/scratch/w');
    expect(resolveLocation('/jobs/a', 's3://bucket/work')).toBe('s3://bucket/work');
  });

  it('reads the bucket and key out of a URI', () => {
    expect(parseObjectStoreUri('s3://bucket')).toEqual({ bucket: 'bucket', key: '' });
    expect(parseObjectStoreUri('s3://bucket/')).toEqual({ bucket: 'bucket', key: '' });
    expect(parseObjectStoreUri('s3://bucket/a/b/')).toEqual({ bucket: 'bucket', key: 'a/b' });
  });

  it('refuses a URI with no bucket, or not an s3:// one, as a user mistake', () => {
    for (const uri of ['s3://', 's3:///key', 's3://bad bucket/x', '/local/path']) {
      expect(() => parseObjectStoreUri(uri)).toThrow(UserError);
    }
    expect(() => parseObjectStoreUri('s3://')).toThrow('"s3://" names no bucket');
  });

  it('keeps downloads inside the folder they fill', () => {
    expect(pathInside('/dest', 'a/b.txt', 's3://b/p/a/b.txt')).toBe('/dest/a/b.txt');
    expect(() => pathInside('/dest', '../escape.txt', 's3://b/p/../escape.txt')).toThrow(UserError);
    expect(() => pathInside('/dest', 'a/../../escape.txt', 's3://b/x')).toThrow(/would be written outside \/dest/);
  });
});
