// Signature Version 4 checking for the test S3 server. s3rver refuses unknown access key ids but
// accepts any V4 signature (its own check covers only V2), so without this a wrong secret key
// would pass in the tests where real S3 refuses it. This verifies the request's header signature
// (method, path, query, signed headers, declared payload hash) the way S3 does; payload chunk
// signatures and presigned URLs are left unchecked.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

/** Koa middleware refusing V4-signed requests whose signature does not match `secrets[accessKeyId]`. */
export function requireValidSignatures(secrets) {
  return async (ctx, next) => {
    const match = AUTHORIZATION.exec(ctx.get('authorization'));
    const secret = match && secrets[match[1]];
    if (secret) {
      const [, , date, region, service, signedHeaders, signature] = match;
      const expected = sign(secret, date, region, service, stringToSign(ctx.req, date, region, service, signedHeaders));
      if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
        ctx.status = 403;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>' +
          '<Message>The request signature we calculated does not match the signature you provided.</Message></Error>';
        return;
      }
    }
    await next();
  };
}

function stringToSign(req, date, region, service, signedHeaders) {
  const [path, query = ''] = req.url.split(/\?(.*)/s);
  const headers = signedHeaders
    .split(';')
    .map(
      (name) =>
        `${name}:${String(req.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonicalRequest = [req.method, path, canonicalQuery(query), headers, signedHeaders, req.headers['x-amz-content-sha256'] ?? 'UNSIGNED-PAYLOAD'].join('\n');
  const amzDate = req.headers['x-amz-date'] ?? '';
  return ['AWS4-HMAC-SHA256', amzDate, `${date}/${region}/${service}/aws4_request`, sha256(canonicalRequest)].join('\n');
}

function canonicalQuery(query) {
  return query
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const [key, value = ''] = pair.split(/=(.*)/s);
      return [strictEncode(decodeURIComponent(key)), strictEncode(decodeURIComponent(value))];
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

function strictEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function sign(secret, date, region, service, text) {
  let key = hmac(`AWS4${secret}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  return createHmac('sha256', key).update(text).digest('hex');
}

function hmac(key, text) {
  return createHmac('sha256', key).update(text).digest();
}

function sha256(text) {
  return createHash('sha256').update(text).digest('hex');
}
