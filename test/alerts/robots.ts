/**
 * Local HTTP servers that behave like the WeCom (企业微信) and DingTalk (钉钉)
 * group robots as their documentation describes them, and a plain webhook
 * receiver. They check what the documented robots check and answer as they
 * do, so a wrong payload or signature fails the test:
 *
 * WeCom: POST /cgi-bin/webhook/send?key=KEY, JSON `{"msgtype":"markdown",
 * "markdown":{"content":"..."}}`, content at most 4096 bytes; a wrong key is
 * errcode 93000, a bad message 40008 / 44004; success `{"errcode":0,"errmsg":"ok"}`.
 *
 * DingTalk: POST /robot/send?access_token=TOKEN[&timestamp=MS&sign=SIGN],
 * JSON `{"msgtype":"markdown","markdown":{"title":"...","text":"..."}}`; with
 * a secret ("加签") the timestamp must be within an hour and sign must equal
 * base64(HmacSHA256(secret, timestamp + "\n" + secret)), else errcode 310000;
 * a keyword robot refuses a text without its keyword (310000).
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RobotHit {
  path: string;
  query: Record<string, string>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The robot's answer. */
  errcode: number;
}

export interface Robot {
  url: string;
  hits: RobotHit[];
  /** Accepted messages only. */
  accepted(): RobotHit[];
  /** Answer this many next requests with a refusal (WeCom 45009 / DingTalk 130101: too many messages). */
  refuseNext: number;
  /** Answer with this HTTP status instead (0: normal). */
  httpStatus: number;
  close(): Promise<void>;
  waitFor(pred: (hits: RobotHit[]) => boolean, timeoutMs?: number): Promise<void>;
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function serve(check: (path: string, q: URLSearchParams, body: any) => { errcode: number; errmsg: string }, pathPrefix: string, authQuery: string): Promise<Robot> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const robot: Robot = {
    url: '',
    hits: [],
    accepted: () => robot.hits.filter((h) => h.errcode === 0),
    refuseNext: 0,
    httpStatus: 0,
    close: () => new Promise<void>((r) => server.close(() => r())),
    waitFor: async (pred, timeoutMs = 20_000) => {
      const until = Date.now() + timeoutMs;
      while (!pred(robot.hits)) {
        if (Date.now() > until) throw new Error(`robot did not receive the expected messages; got ${JSON.stringify(robot.hits.map((h) => h.body), null, 1).slice(0, 2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://robot.local');
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      if (robot.httpStatus) {
        robot.hits.push({ path: u.pathname, query: Object.fromEntries(u.searchParams), body, errcode: -1 });
        return answer(res, robot.httpStatus, { error: 'test status' });
      }
      let r: { errcode: number; errmsg: string };
      if (req.method !== 'POST' || u.pathname !== pathPrefix) r = { errcode: 404, errmsg: 'not found' };
      else if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) r = { errcode: 40035, errmsg: 'content-type must be application/json' };
      else if (!u.searchParams.get(authQuery)) r = { errcode: 93000, errmsg: 'invalid webhook url' };
      else if (body === undefined) r = { errcode: 40035, errmsg: 'body is not JSON' };
      else r = check(u.pathname, u.searchParams, body);
      if (r.errcode === 0 && robot.refuseNext > 0) {
        robot.refuseNext--;
        r = { errcode: 45009, errmsg: 'api freq out of limit' };
      }
      robot.hits.push({ path: u.pathname, query: Object.fromEntries(u.searchParams), body, errcode: r.errcode });
      answer(res, 200, r);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  robot.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return robot;
}

/** A WeCom group robot with webhook key `key`. */
export function wecomRobot(key: string): Promise<Robot> {
  return serve((_p, q, body) => {
    if (q.get('key') !== key) return { errcode: 93000, errmsg: 'invalid webhook url, hint: key not found' };
    if (body?.msgtype !== 'markdown' || typeof body.markdown !== 'object') return { errcode: 40008, errmsg: 'invalid message type' };
    const content = body.markdown.content;
    if (typeof content !== 'string' || content === '') return { errcode: 44004, errmsg: 'empty content' };
    if (Buffer.byteLength(content, 'utf8') > 4096) return { errcode: 40058, errmsg: 'markdown.content exceed max length 4096' };
    if (Object.keys(body).some((k) => !['msgtype', 'markdown'].includes(k))) return { errcode: 40008, errmsg: 'unexpected key' };
    return { errcode: 0, errmsg: 'ok' };
  }, '/cgi-bin/webhook/send', 'key');
}

/** A DingTalk group robot with access token `token`, signing secret `secret` and/or a required keyword. */
export function dingtalkRobot(token: string, opts: { secret?: string; keyword?: string } = {}): Promise<Robot> {
  return serve((_p, q, body) => {
    if (q.get('access_token') !== token) return { errcode: 300001, errmsg: 'token is not exist' };
    if (opts.secret) {
      const ts = q.get('timestamp');
      const sign = q.get('sign');
      if (!ts || !sign) return { errcode: 310000, errmsg: 'sign not match' };
      if (Math.abs(Date.now() - Number(ts)) > 3_600_000) return { errcode: 310000, errmsg: 'timestamp is out of range' };
      const expected = createHmac('sha256', opts.secret).update(`${ts}\n${opts.secret}`, 'utf8').digest('base64');
      if (sign !== expected) return { errcode: 310000, errmsg: 'sign not match' };
    }
    if (body?.msgtype !== 'markdown' || typeof body.markdown !== 'object') return { errcode: 40035, errmsg: 'missing parameter msgtype' };
    const { title, text } = body.markdown as { title?: unknown; text?: unknown };
    if (typeof title !== 'string' || !title || typeof text !== 'string' || !text) return { errcode: 40035, errmsg: 'missing parameter markdown.title or markdown.text' };
    if (opts.keyword && !text.includes(opts.keyword) && !title.includes(opts.keyword)) return { errcode: 310000, errmsg: 'keywords not in content' };
    return { errcode: 0, errmsg: 'ok' };
  }, '/robot/send', 'access_token');
}

/** A generic webhook receiver at /hook (any JSON body accepted with 200). */
export function webhookReceiver(): Promise<Robot> {
  return serve(() => ({ errcode: 0, errmsg: 'ok' }), '/hook', 'k');
}
