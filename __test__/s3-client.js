'use strict';

// A minimal S3 client for the tests (AWS Signature V4 over node:http), so a
// test can read, damage, delete and list the objects of a repository in a
// bucket directly, the way an attacker or a failing disk would, without the
// engine in between.

const crypto = require('node:crypto');
const http = require('node:http');

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
// S3 key encoding: every byte but unreserved characters, '/' kept in paths.
const encode = (s, keepSlash) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(keepSlash ? /%2F/g : /$^/, '/');

/** A client for `bucket` on the Garage `g` (endpoint, region, accessKeyId, secretAccessKey). */
function s3Client(g, bucket = g.bucket) {
  const { hostname, port } = new URL(g.endpoint);
  const host = `${hostname}:${port}`;

  function request(method, key, { query = {}, body = Buffer.alloc(0), headers: extra = {} } = {}) {
    const now = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = now.slice(0, 8);
    const pathname = `/${bucket}/${encode(key, true)}`.replace(/\/$/, key === '' ? '/' : '');
    const qs = Object.keys(query).sort().map((k) => `${encode(k)}=${encode(String(query[k]))}`).join('&');
    const headers = { host, 'x-amz-date': now, 'x-amz-content-sha256': sha256(body), ...extra };
    const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
    const canonical = [method, pathname, qs, ...names.map((h) => `${h}:${String(headers[h]).trim()}`), '', names.join(';'), headers['x-amz-content-sha256']].join('\n');
    const scope = `${day}/${g.region}/s3/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', now, scope, sha256(canonical)].join('\n');
    let k = hmac(`AWS4${g.secretAccessKey}`, day);
    for (const part of [g.region, 's3', 'aws4_request']) k = hmac(k, part);
    const signature = crypto.createHmac('sha256', k).update(toSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${g.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    headers['content-length'] = body.length;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: hostname, port, method, path: qs ? `${pathname}?${qs}` : pathname, headers, agent: false }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const ok = (res, what) => {
    if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
    return res;
  };

  return {
    /** The object's bytes, or null when it does not exist. */
    async get(key) {
      const res = await request('GET', key);
      if (res.status === 404) return null;
      return ok(res, `GET ${key}`).body;
    },
    async put(key, body) {
      ok(await request('PUT', key, { body: Buffer.from(body) }), `PUT ${key}`);
    },
    async del(key) {
      ok(await request('DELETE', key), `DELETE ${key}`);
    },
    /** Every key under `prefix` (recursive), sorted. */
    async list(prefix = '') {
      const keys = [];
      let token;
      for (;;) {
        const query = { 'list-type': 2, ...(prefix ? { prefix } : {}), ...(token ? { 'continuation-token': token } : {}) };
        const xml = ok(await request('GET', '', { query }), `LIST ${prefix}`).body.toString('utf8');
        for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'"));
        token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? /<NextContinuationToken>([^<]*)</.exec(xml)?.[1] : undefined;
        if (!token) return keys.sort();
      }
    },
  };
}

module.exports = { s3Client };
