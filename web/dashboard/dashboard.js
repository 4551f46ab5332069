/* chatmon supervisors' dashboard.
 *
 * Reads the /feed WebSocket of `chatmon dashboard` (docs/dashboard.md) and
 * draws three panels: live alerts, customers waiting now, agents' figures.
 * With dashboard.users set, it first asks GET /api/login who is logged in
 * and shows a login form instead of the panels until someone is; the
 * session is an HttpOnly cookie the script never sees.
 * Plain DOM, no framework. The page is served under
 *   Content-Security-Policy: default-src 'self'; connect-src 'self'; ...
 * so there is no inline script or style anywhere: markup gets classes, SVG
 * gets attributes, and the few computed sizes go through the CSSOM.
 *
 * Every string that came from the feed is untrusted (chat text typed by
 * agents and buyers, agent ids, conversation ids): it only ever reaches the
 * page through textContent / createTextNode, never through innerHTML.
 */
'use strict';

const MAX_KEPT = 2000;          // alerts held in memory
const MAX_DRAWN = 200;          // alert rows in the DOM
const TEXT_MAX = 90;            // code points of a chat message shown in a row
const TEXT_LEAD = 20;           // ... of which at most this many before the match
const RETRY_FIRST_MS = 500;     // reconnect pauses: 0.5 s doubling to 10 s
const RETRY_MAX_MS = 10000;
const DENIED_AFTER = 3;         // failed attempts, never opened: probably refused
const TICK_MS = 250;            // waiting counters
const CHART_CLIP = 4;           // the hour chart's scale stops at 4 × the reply threshold
const RATE_LOW = 0.8;           // reply rate shown in red below this (Pinduoduo's red line)

// Rule categories, in the order of the category filter: the agent's
// offences first (the blocking ones, then the warned/flagged ones), then the
// buyer's signals. Any other category an alert carries is added at the end.
const AGENT_CATEGORIES = ['offplatform', 'invoice', 'returns', 'payment', 'review_bait', 'abuse',
  'order_close', 'stock', 'ad_law', 'privacy', 'etiquette'];
const CUSTOMER_CATEGORIES = ['complaint_risk', 'extortion'];
const KNOWN_CATEGORIES = new Set([...AGENT_CATEGORIES, ...CUSTOMER_CATEGORIES]);
// Colour of a category chip in the agents table: the severity the default
// rule pack (conf/rules.d) gives the category; buyer signals have their own.
const CATEGORY_TONE = {
  offplatform: 'critical', invoice: 'critical', returns: 'critical', payment: 'critical',
  review_bait: 'critical', abuse: 'critical', order_close: 'warn', stock: 'warn',
  ad_law: 'warn', privacy: 'warn', etiquette: 'warn', complaint_risk: 'customer', extortion: 'customer',
};
const SEVERITIES = ['critical', 'warn', 'info'];
const SLA_TYPES = ['sla.warn', 'sla.breach', 'sla.escalate'];

/* ---------------------------------------------------------------- strings */

const STRINGS = {
  zh: {
    locale: 'zh-CN',
    title: '客服质检看板',
    switchTo: 'English',
    switchToLabel: '切换到英文界面',
    day: (day, tz) => `营业日 ${day}` + (tz ? ` · 服务器时区 ${tz}` : ''),
    'conn.connecting': '连接中…',
    'conn.live': '实时',
    'conn.lost': '重连中…',
    'conn.denied': '连接被拒绝',
    'banner.lost': '与看板服务器的连接已中断，正在重新连接…（等待回复和客服表现暂停更新）',
    'banner.denied': '看板服务器拒绝了实时数据连接：请确认页面链接里的 token 参数正确。仍在重试…',
    'banner.redis': '看板服务器暂时连不上 Redis：显示的数据可能不是最新的。',
    'alerts.title': '实时告警',
    'login.title': '登录客服质检看板',
    'login.note': '看板显示聊天内容，仅限授权的主管查看。',
    'login.user': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.failed': '用户名或密码错误。',
    'login.limited': (min) => `登录失败次数过多，请 ${min} 分钟后再试。`,
    'login.error': '暂时无法登录，请稍后再试。',
    logout: '退出登录',
    who: (user, role) => `${user} · ${role === 'supervisor' ? '主管' : '查看者'}`,
    'alerts.count': (shown, matching, kept) => `显示 ${shown} 条 · 符合筛选 ${matching} 条 · 内存中 ${kept} 条`,
    'alerts.none': '暂无告警',
    'alerts.filtered': '没有符合筛选条件的告警',
    'sev.critical': '严重',
    'sev.warn': '警告',
    'sev.info': '提示',
    'filter.category': '类别',
    'filter.agent': '客服',
    'filter.allCategories': '全部类别',
    'filter.sla': '响应超时 (SLA)',
    'filter.agentGroup': '客服违规',
    'filter.customerGroup': '买家信号',
    'filter.otherGroup': '其他',
    'filter.allAgents': '全部客服',
    'col.time': '时间',
    'col.severity': '级别',
    'col.what': '类型',
    'col.who': '客服 / 会话',
    'col.content': '内容',
    blocked: '已拦截',
    buyer: '买家',
    folded: (n) => `${n} 条相同告警合并为一条`,
    'sla.warn': (first) => first ? '首次响应超时预警' : '回复超时预警',
    'sla.breach': (first) => first ? '首次响应超时' : '回复超时',
    'sla.escalate': (first) => first ? '首次响应超时升级' : '回复超时升级',
    slaLine: (waited, threshold) => `等待 ${waited} / 阈值 ${threshold}`,
    'cat.offplatform': '站外引流',
    'cat.invoice': '拒开发票',
    'cat.returns': '拒绝七天无理由',
    'cat.payment': '支付方式违规',
    'cat.review_bait': '好评返现',
    'cat.abuse': '辱骂买家',
    'cat.order_close': '代关订单',
    'cat.stock': '声称无货',
    'cat.ad_law': '广告法违禁词',
    'cat.privacy': '泄露隐私',
    'cat.etiquette': '服务用语',
    'cat.complaint_risk': '投诉风险',
    'cat.extortion': '差评勒索',
    'waiting.title': '等待回复',
    'waiting.count': (total, instances) => `${total} 人等待 · ${instances} 个实例`,
    'waiting.partial': (shown) => ` · 列出最久的 ${shown} 人`,
    'waiting.none': '现在没有买家在等待回复',
    'waiting.first': '首次响应',
    'waiting.reply': '回复',
    threshold: (d) => `阈值 ${d}`,
    'agents.title': '客服今日表现',
    'agents.note': (thr) => `柱高为每小时平均响应，虚线为回复阈值 ${thr}，超过阈值的柱为红色`,
    'agents.none': '今天还没有结束的轮次',
    'col.agent': '客服',
    'col.rounds': '轮次',
    'col.first': '首响均值',
    'col.mean': '平均响应',
    'col.p90': 'P90',
    'col.rate': (d) => `${d}回复率`,
    'col.breaches': '超时',
    'col.escalations': '升级',
    'col.hits': '违规',
    'col.chart': (tz) => `每小时平均响应 (0–23 时${tz ? ', ' + tz : ''})`,
    answered: (n) => `已回复 ${n} 轮`,
    filterBy: (name) => `${name}：只看此客服的告警`,
    chartLabel: '今日每小时平均响应时间',
    chartBar: (hour, rounds, mean) => `${hour} 时: ${rounds} 轮, 平均 ${mean}`,
    loading: '正在加载…',
    seconds: (s) => `${s} 秒`,
    minutes: (m) => `${m} 分钟`,
    minSec: (m, s) => `${m} 分 ${s} 秒`,
  },
  en: {
    locale: 'en',
    title: 'chatmon — supervisor dashboard',
    switchTo: '中文',
    switchToLabel: 'Switch to Chinese',
    day: (day, tz) => `Day ${day}` + (tz ? ` · server time ${tz}` : ''),
    'conn.connecting': 'Connecting…',
    'conn.live': 'Live',
    'conn.lost': 'Reconnecting…',
    'conn.denied': 'Refused',
    'banner.lost': 'Connection to the dashboard server lost, reconnecting… (waiting customers and agent figures are not updated meanwhile)',
    'banner.denied': 'The dashboard server refused the live feed: check the token parameter in the page address. Still retrying…',
    'banner.redis': 'The dashboard server cannot reach Redis: what you see may be out of date.',
    'login.title': 'Sign in to the chat-monitor dashboard',
    'login.note': 'The dashboard shows chat text: for authorised supervisors only.',
    'login.user': 'User name',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.failed': 'Wrong user name or password.',
    'login.limited': (min) => `Too many failed sign-ins: try again in ${min} min.`,
    'login.error': 'Signing in is not possible right now: try again later.',
    logout: 'Sign out',
    who: (user, role) => `${user} · ${role === 'supervisor' ? 'supervisor' : 'viewer'}`,
    'alerts.title': 'Live alerts',
    'alerts.count': (shown, matching, kept) => `showing ${shown} of ${matching} matching · ${kept} kept`,
    'alerts.none': 'No alerts yet',
    'alerts.filtered': 'No alert matches the filters',
    'sev.critical': 'Critical',
    'sev.warn': 'Warning',
    'sev.info': 'Info',
    'filter.category': 'Category',
    'filter.agent': 'Agent',
    'filter.allCategories': 'All categories',
    'filter.sla': 'Response time (SLA)',
    'filter.agentGroup': 'Agent rules',
    'filter.customerGroup': 'Buyer signals',
    'filter.otherGroup': 'Other',
    'filter.allAgents': 'All agents',
    'col.time': 'Time',
    'col.severity': 'Severity',
    'col.what': 'What',
    'col.who': 'Agent / conversation',
    'col.content': 'Message',
    blocked: 'Blocked',
    buyer: 'Buyer',
    folded: (n) => `${n} identical alerts folded into one`,
    'sla.warn': (first) => first ? 'First response: warning' : 'Reply: warning',
    'sla.breach': (first) => first ? 'First response: late' : 'Reply: late',
    'sla.escalate': (first) => first ? 'First response: escalated' : 'Reply: escalated',
    slaLine: (waited, threshold) => `waited ${waited} / threshold ${threshold}`,
    'cat.offplatform': 'Off-platform contact',
    'cat.invoice': 'Invoice refused',
    'cat.returns': '7-day returns denied',
    'cat.payment': 'Payment method',
    'cat.review_bait': 'Paid reviews',
    'cat.abuse': 'Abusive language',
    'cat.order_close': 'Closing orders',
    'cat.stock': 'Out-of-stock claim',
    'cat.ad_law': 'Advertising law',
    'cat.privacy': 'Privacy leak',
    'cat.etiquette': 'Etiquette',
    'cat.complaint_risk': 'Complaint risk',
    'cat.extortion': 'Review extortion',
    'waiting.title': 'Waiting now',
    'waiting.count': (total, instances) =>
      `${total} waiting · ${instances} instance${instances === 1 ? '' : 's'}`,
    'waiting.partial': (shown) => ` · ${shown} listed`,
    'waiting.none': 'Nobody is waiting for an answer',
    'waiting.first': 'First response',
    'waiting.reply': 'Reply',
    threshold: (d) => `threshold ${d}`,
    'agents.title': 'Agents today',
    'agents.note': (thr) => `bars: mean response per hour; dashed line: the ${thr} reply threshold; red: above it`,
    'agents.none': 'No round closed today yet',
    'col.agent': 'Agent',
    'col.rounds': 'Rounds',
    'col.first': 'First resp.',
    'col.mean': 'Mean',
    'col.p90': 'P90',
    'col.rate': (d) => `${d} rate`,
    'col.breaches': 'Breaches',
    'col.escalations': 'Escal.',
    'col.hits': 'Rule hits',
    'col.chart': (tz) => `Mean response by hour (0–23${tz ? ', ' + tz : ''})`,
    answered: (n) => `${n} answered`,
    filterBy: (name) => `${name}: show this agent's alerts only`,
    chartLabel: 'Mean response time by hour today',
    chartBar: (hour, rounds, mean) => `${hour}:00 — ${rounds} rounds, mean ${mean}`,
    loading: 'Loading…',
    seconds: (s) => `${s} s`,
    minutes: (m) => `${m} min`,
    minSec: (m, s) => `${m} min ${s} s`,
  },
};

/* ------------------------------------------------------------------ state */

const params = new URLSearchParams(location.search);
const TOKEN = params.get('token') || '';

const state = {
  lang: 'zh',
  // from hello; the defaults only matter until it arrives
  sla: { first_response_ms: 15000, reply_ms: 30000, warn_at: 0.8, escalate_ms: 180000, rate_ms: 180000 },
  day: '',
  tzOffsetMin: null,
  redisOk: true,
  alertsLoaded: false,    // the first `alerts` message has come
  kept: [],               // alert entries, oldest first (stream order)
  keptKeys: new Set(),    // their keys, to drop duplicates
  agentsSeen: new Set(),
  otherCategories: new Set(),   // categories outside the known 13
  filterOptionsStale: true,
  filter: { sev: { critical: true, warn: true, info: true }, category: '', agent: '' },
  waiting: null,          // last `waiting` message, plus `at`: performance.now() at arrival
  waitRows: [],           // { el, wait, fill, base, threshold, level, text }
  agents: null,           // last `agents` message
  agentsSig: '',          // ... as JSON, to skip repeats
};

// Who is logged in (GET /api/login); logins: whether the dashboard has any.
const auth = { logins: false, user: '', role: '', locked: false };

const feed = {
  ws: null,
  state: 'connecting',    // connecting | live | lost | denied
  lastSid: '',
  everOpened: false,
  failures: 0,            // attempts in a row that closed before opening
  retryMs: RETRY_FIRST_MS,
};

const $ = (id) => document.getElementById(id);
const dom = {
  day: $('day'), conn: $('conn'), connText: $('conn-text'), lang: $('lang'), banner: $('banner'),
  alerts: $('alerts'), alertsEmpty: $('alerts-empty'), alertsCount: $('alerts-count'),
  sevBoxes: Object.fromEntries(SEVERITIES.map((s) => [s, $('f-sev-' + s)])),
  sevCounts: Object.fromEntries(SEVERITIES.map((s) => [s, $('n-' + s)])),
  category: $('f-category'), agent: $('f-agent'),
  waiting: $('waiting'), waitingEmpty: $('waiting-empty'), waitingCount: $('waiting-count'),
  agentsBody: document.querySelector('#agents tbody'), agentsEmpty: $('agents-empty'),
  agentsNote: $('agents-note'), colRate: $('col-rate'), colChart: $('col-chart'),
  app: $('app'), login: $('login'), loginForm: $('login-form'), loginUser: $('login-user'),
  loginPassword: $('login-password'), loginError: $('login-error'),
  loginSubmit: $('login-submit'), who: $('who'), logout: $('logout'),
};

/* ---------------------------------------------------------------- helpers */

function t(key, ...args) {
  const v = STRINGS[state.lang][key];
  return typeof v === 'function' ? v(...args) : v;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

const num = (n) => Number(n).toLocaleString(t('locale'));
const pad2 = (n) => String(n).padStart(2, '0');

// Control characters, C1 codes and bidi controls in chat text are shown
// escaped, as `chatmon tail` does: a buyer must not be able to reorder or
// hide what the supervisor reads. (textContent already makes them inert
// as markup; this makes them visible.)
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const ESCAPES = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
function visible(s) {
  return String(s).replace(CONTROL_RE, (c) => {
    const code = c.charCodeAt(0);
    return ESCAPES[c] || (code < 0x100 ? '\\x' + pad2(code.toString(16)) : '\\u' + code.toString(16).padStart(4, '0'));
  });
}

// "8.3 秒": figures of the agents table, always one decimal.
function fmtSec(ms) {
  return Number.isFinite(ms) ? t('seconds', (ms / 1000).toFixed(1)) : '—';
}

// "31.2 秒", "30 秒", "3 分钟", "3 分 05 秒": waits and thresholds in prose.
function fmtDur(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 60000) return t('seconds', String(Math.round(ms / 100) / 10));
  if (ms % 60000 === 0) return t('minutes', ms / 60000);
  const s = Math.round(ms / 1000);
  return t('minSec', Math.floor(s / 60), pad2(s % 60));
}

// "0:39", "3:05", "1:02:05": the live counters.
function fmtClock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  return (h ? `${h}:${pad2(m)}` : String(m)) + ':' + pad2(s % 60);
}

// ["2026-11-22", "18:00:05"]: a moment in the server's time zone (hello's
// tz_offset_min), the one of the business day and of the hour chart, so
// that every time on the page agrees; the browser's own until hello came.
function dayClock(ms) {
  const tz = Number.isFinite(state.tzOffsetMin);
  const d = new Date(tz ? ms + state.tzOffsetMin * 60000 : ms);
  const [y, mo, da, h, mi, s] = tz
    ? [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  return [`${y}-${pad2(mo + 1)}-${pad2(da)}`, `${pad2(h)}:${pad2(mi)}:${pad2(s)}`];
}

function fmtPercent(rate) {
  return Number.isFinite(rate) ? (rate * 100).toFixed(1).replace(/\.0$/, '') + '%' : '—';
}

function fmtTz(min) {
  if (!Number.isFinite(min)) return '';
  const a = Math.abs(min);
  return `UTC${min < 0 ? '−' : '+'}${pad2(Math.floor(a / 60))}:${pad2(a % 60)}`;
}

// "3分钟回复率" from sla.rate_ms: without the space the Chinese label wants.
function rateLabel() {
  return t('col.rate', fmtDur(state.sla.rate_ms).replace(/ /g, state.lang === 'zh' ? '' : '-'));
}

function categoryLabel(c) {
  return STRINGS[state.lang]['cat.' + c] || c;
}

/* ----------------------------------------------------------------- alerts */

// One kept alert, with what the filters and the row need worked out once.
function entry(sid, a) {
  const sla = SLA_TYPES.includes(a.type);
  return {
    key: typeof a.id === 'string' ? a.id : sid,
    alert: a,
    sla,
    severity: SEVERITIES.includes(a.severity) ? a.severity : 'info',
    category: sla ? 'sla' : String(a.category ?? ''),
    agent: String(a.agent ?? ''),
    time: Date.parse(a.ts),
  };
}

function takeAlerts(m) {
  state.alertsLoaded = true;
  if (m.reset) {
    state.kept.length = 0;
    state.keptKeys.clear();
  }
  for (const item of Array.isArray(m.alerts) ? m.alerts : []) {
    if (!item || typeof item !== 'object') continue;
    if (typeof item.sid === 'string') feed.lastSid = item.sid;
    const a = item.alert;
    // docs/alerts.md: readers skip the types they do not know.
    if (!a || typeof a !== 'object' || (a.type !== 'rule.hit' && !SLA_TYPES.includes(a.type))) continue;
    const e = entry(item.sid, a);
    if (state.keptKeys.has(e.key)) continue;
    state.kept.push(e);
    state.keptKeys.add(e.key);
    if (e.agent && !state.agentsSeen.has(e.agent)) {
      state.agentsSeen.add(e.agent);
      state.filterOptionsStale = true;
    }
    if (!e.sla && e.category && !KNOWN_CATEGORIES.has(e.category) && !state.otherCategories.has(e.category)) {
      state.otherCategories.add(e.category);
      state.filterOptionsStale = true;
    }
  }
  const excess = state.kept.length - MAX_KEPT;
  if (excess > 0) {
    for (const e of state.kept.splice(0, excess)) state.keptKeys.delete(e.key);
  }
  scheduleRender();
}

function passes(e) {
  const f = state.filter;
  return f.sev[e.severity] && (!f.category || e.category === f.category) && (!f.agent || e.agent === f.agent);
}

// The chat message with the match in a <mark>. Offsets are Unicode code
// points (docs/alerts.md), hence Array.from, not String.slice. A long
// message is cut to a window around the match; the whole is in the tooltip.
function messageText(a) {
  const text = typeof a.text === 'string' ? a.text : '';
  const cps = Array.from(text);
  const n = cps.length;
  const m = a.match;
  const hit = m && Number.isInteger(m.start) && Number.isInteger(m.end) && m.start >= 0 && m.start < m.end && m.end <= n;
  const s = hit ? m.start : n;
  const e = hit ? m.end : n;
  const from = hit ? Math.max(0, Math.min(s - TEXT_LEAD, n - TEXT_MAX)) : 0;
  const to = Math.min(n, Math.max(from + TEXT_MAX, e));

  const span = el('span', 'text');
  const part = (i, j) => visible(cps.slice(i, j).join(''));
  if (from > 0) span.append('…');
  span.append(part(from, s));
  if (hit) span.append(el('mark', '', part(s, e)), part(e, to));
  if (to < n) span.append('…');
  if (from > 0 || to < n) span.title = text;
  return span;
}

function alertRow(e) {
  const a = e.alert;
  const row = el('div', `alert sev-${e.severity}`);
  const blocked = a.action === 'block';
  Object.assign(row.dataset, {
    id: String(a.id ?? ''), severity: String(a.severity ?? ''), type: a.type,
    category: e.category, agent: e.agent, blocked: String(blocked),
  });

  const time = el('div', 'c-time');
  if (Number.isFinite(e.time)) {
    const [day, clock] = dayClock(e.time);
    time.textContent = clock;
    time.title = `${day} ${clock} ${fmtTz(state.tzOffsetMin)}`.trim();
  } else {
    time.textContent = '--:--:--';
  }

  const sev = el('div', 'c-sev');
  sev.append(el('span', `badge sev-${e.severity}`, t('sev.' + e.severity)));

  const what = el('div', 'c-what');
  if (e.sla) {
    what.append(el('span', 'what', t(a.type, a.first === true)));
  } else {
    const w = el('span', 'what', categoryLabel(e.category));
    if (a.rule) w.title = String(a.rule);
    what.append(w);
    if (blocked) what.append(el('span', 'badge blocked', t('blocked')));
  }

  const who = el('div', 'c-who');
  who.append(el('span', 'agent', visible(e.agent)), el('span', 'conv', visible(a.conversation ?? '')));
  who.title = `${e.agent} · ${a.conversation ?? ''}`;   // both may be cut short on screen

  const body = el('div', 'c-body');
  if (e.sla) {
    body.append(el('div', 'sla-line', t('slaLine', fmtDur(a.waited_ms), fmtDur(a.threshold_ms))));
  } else {
    const line = el('div', 'msg');
    if (a.role === 'customer') line.append(el('span', 'role', t('buyer')));
    line.append(messageText(a));
    body.append(line);
    if (a.message) {
      const coach = el('div', 'coach', visible(a.message));
      coach.title = String(a.message);    // one line on screen, the whole in the tooltip
      body.append(coach);
    }
  }

  const count = el('div', 'c-count');
  if (Number.isInteger(a.count) && a.count > 1) {
    count.textContent = '×' + a.count;
    count.title = t('folded', a.count);
  }

  row.append(time, sev, what, who, body, count);
  return row;
}

// Rows of the alerts drawn last time, by key: a row is built once and
// moved, not rebuilt, while its alert stays among the newest 200 shown.
let rowCache = new Map();

function renderAlerts() {
  const drawn = [];
  let matching = 0;
  const perSeverity = { critical: 0, warn: 0, info: 0 };
  for (let i = state.kept.length - 1; i >= 0; i--) {
    const e = state.kept[i];
    perSeverity[e.severity]++;
    if (!passes(e)) continue;
    matching++;
    if (drawn.length < MAX_DRAWN) drawn.push(e);
  }

  // Reconcile the list with `drawn`, newest first. The usual change is a
  // few new rows on top and as many gone at the bottom: that costs those
  // insertions and removals only.
  const list = dom.alerts;
  const next = new Map();
  let cursor = list.firstElementChild;
  for (const e of drawn) {
    const row = rowCache.get(e.key) || alertRow(e);
    next.set(e.key, row);
    if (row === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(row, cursor);
  }
  while (cursor) {
    const gone = cursor;
    cursor = cursor.nextElementSibling;
    gone.remove();
  }
  rowCache = next;

  for (const s of SEVERITIES) dom.sevCounts[s].textContent = num(perSeverity[s]);
  dom.alertsCount.textContent = t('alerts.count', num(drawn.length), num(matching), num(state.kept.length));
  dom.alertsEmpty.textContent = drawn.length ? ''
    : t(state.kept.length ? 'alerts.filtered' : state.alertsLoaded ? 'alerts.none' : 'loading');
  dom.alertsEmpty.hidden = drawn.length > 0;
}

/* ---------------------------------------------------------------- filters */

function option(value, label) {
  const o = el('option', '', label);
  o.value = value;
  return o;
}

function group(label, values) {
  const g = el('optgroup');
  g.label = label;
  for (const v of values) g.append(option(v, categoryLabel(v)));
  return g;
}

// Rebuilt only when a new agent or category shows up, or the language
// changes; the selected value is kept.
function renderFilterOptions() {
  const cat = dom.category;
  cat.replaceChildren(option('', t('filter.allCategories')), option('sla', t('filter.sla')),
    group(t('filter.agentGroup'), AGENT_CATEGORIES), group(t('filter.customerGroup'), CUSTOMER_CATEGORIES));
  if (state.otherCategories.size) cat.append(group(t('filter.otherGroup'), [...state.otherCategories].sort()));
  cat.value = state.filter.category;

  const ag = dom.agent;
  ag.replaceChildren(option('', t('filter.allAgents')));
  for (const a of [...state.agentsSeen].sort((x, y) => x.localeCompare(y))) ag.append(option(a, visible(a)));
  ag.value = state.filter.agent;
  state.filterOptionsStale = false;
}

function onFilterChange() {
  for (const s of SEVERITIES) state.filter.sev[s] = dom.sevBoxes[s].checked;
  state.filter.category = dom.category.value;
  state.filter.agent = dom.agent.value;
  renderAlerts();       // at once, not at the next frame
}

/* ---------------------------------------------------------------- waiting */

function takeWaiting(m) {
  state.waiting = { ...m, at: performance.now() };
  for (const r of Array.isArray(m.rounds) ? m.rounds : []) {
    const a = String(r.agent ?? '');
    if (a && !state.agentsSeen.has(a)) {
      state.agentsSeen.add(a);
      state.filterOptionsStale = true;
      scheduleRender();
    }
  }
  renderWaiting();
}

function renderWaiting() {
  const w = state.waiting;
  state.waitRows = [];
  dom.waiting.replaceChildren();
  if (!w) {
    dom.waitingCount.textContent = '';
    dom.waitingEmpty.textContent = t('loading');
    dom.waitingEmpty.hidden = false;
    return;
  }
  const rounds = Array.isArray(w.rounds) ? w.rounds : [];
  const total = Number.isFinite(w.total) ? w.total : rounds.length;
  dom.waitingCount.textContent = t('waiting.count', num(total), num(w.instances ?? 0)) +
    (total > rounds.length ? t('waiting.partial', num(rounds.length)) : '');
  dom.waitingEmpty.textContent = t('waiting.none');
  dom.waitingEmpty.hidden = rounds.length > 0;

  for (const r of rounds) {
    const row = el('div', 'waiting');
    Object.assign(row.dataset, {
      conversation: String(r.conversation ?? ''), agent: String(r.agent ?? ''), state: String(r.state ?? ''),
    });
    if (r.instance) row.title = String(r.instance);
    const wait = el('div', 'wait');
    const main = el('div', 'w-main');
    main.append(el('span', 'conv', visible(r.conversation ?? '')), el('span', 'agent', visible(r.agent ?? '')));
    const meta = el('div', 'w-meta');
    meta.append(el('span', r.first ? 'kind first' : 'kind', t(r.first ? 'waiting.first' : 'waiting.reply')),
      el('span', 'thr', t('threshold', fmtDur(r.threshold_ms))));
    const bar = el('div', 'w-bar');
    const fill = el('div', 'w-fill');
    bar.append(fill);
    row.append(wait, main, meta, bar);
    dom.waiting.append(row);
    state.waitRows.push({
      el: row, wait, fill, level: '', text: '',
      base: Number(r.waited_ms) || 0, threshold: Number(r.threshold_ms) || state.sla.reply_ms,
    });
  }
  tick();
}

// The counters count on from waited_ms as of the message's arrival; the
// colour follows the count: amber from warn_at × threshold, red from the
// threshold, dark red from the escalation.
function tick() {
  if (!state.waiting) return;
  const elapsed = performance.now() - state.waiting.at;
  const warnAt = Number(state.sla.warn_at) || 0.8;
  for (const r of state.waitRows) {
    const waited = r.base + elapsed;
    const text = fmtClock(waited);
    if (text !== r.text) {
      r.text = text;
      r.wait.textContent = text;
    }
    const level = waited >= state.sla.escalate_ms ? 'esc' : waited >= r.threshold ? 'over'
      : waited >= warnAt * r.threshold ? 'warn' : 'ok';
    if (level !== r.level) {
      if (r.level) r.el.classList.remove('lvl-' + r.level);
      r.el.classList.add('lvl-' + level);
      r.level = level;
    }
    r.fill.style.transform = `scaleX(${Math.min(waited / r.threshold, 1)})`;   // CSSOM: allowed by the CSP
  }
}

/* ----------------------------------------------------------------- agents */

function takeAgents(m) {
  // Sent every snapshot interval, mostly unchanged: then the table (and a
  // tooltip the supervisor is reading on it) stays as it is.
  const sig = JSON.stringify([m.day, m.agents]);
  if (sig === state.agentsSig) return;
  state.agentsSig = sig;
  state.agents = m;
  for (const a of Array.isArray(m.agents) ? m.agents : []) {
    const name = String(a.agent ?? '');
    if (name && !state.agentsSeen.has(name)) {
      state.agentsSeen.add(name);
      state.filterOptionsStale = true;
      scheduleRender();
    }
  }
  if (m.day) state.day = String(m.day);
  renderHeader();
  renderAgents();
}

function cell(className, text, bad) {
  const td = el('td', className, text);
  if (bad) td.classList.add('bad');
  return td;
}

// Mean response per hour of the server's day, 240 × 48: bars on a scale
// that stops at CHART_CLIP × the reply threshold (one unanswered round
// counts 600 s and would flatten the rest), the threshold dashed, the bars
// above it red.
function hourChart(hours) {
  const W = 240, H = 48, TOP = 3, BASE = 37, SLOT = W / 24;
  const thr = state.sla.reply_ms;
  const bars = (Array.isArray(hours) ? hours : []).filter((h) =>
    Number.isInteger(h.hour) && h.hour >= 0 && h.hour < 24 && Number.isFinite(h.mean_ms));
  const max = Math.min(Math.max(thr * 1.25, ...bars.map((h) => h.mean_ms)), thr * CHART_CLIP);
  const y = (v) => BASE - Math.min(v / max, 1) * (BASE - TOP);

  const chart = svg('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('chartLabel') });
  svg('rect', { class: 'plot', x: 0, y: TOP, width: W, height: BASE - TOP }, chart);
  for (const h of bars) {
    const top = Math.min(y(h.mean_ms), BASE - 1);
    const bar = svg('rect', {
      class: h.mean_ms > thr ? 'bar over' : 'bar',
      x: h.hour * SLOT + 1, y: top, width: SLOT - 2, height: BASE - top,
    }, chart);
    svg('title', {}, bar).textContent = t('chartBar', h.hour, num(h.rounds ?? 0), fmtSec(h.mean_ms));
  }
  svg('line', { class: 'axis', x1: 0, x2: W, y1: BASE + 0.5, y2: BASE + 0.5 }, chart);
  svg('line', { class: 'thr', x1: 0, x2: W, y1: y(thr), y2: y(thr) }, chart);
  for (const hour of [0, 6, 12, 18]) {
    svg('text', { class: 'tick', x: hour * SLOT + 1, y: H - 1 }, chart).textContent = String(hour);
  }
  return chart;
}

function renderAgents() {
  dom.colRate.textContent = rateLabel();
  dom.colChart.textContent = t('col.chart', fmtTz(state.tzOffsetMin));
  dom.agentsNote.textContent = t('agents.note', fmtDur(state.sla.reply_ms));
  const list = state.agents && Array.isArray(state.agents.agents) ? state.agents.agents : null;
  dom.agentsBody.replaceChildren();
  dom.agentsEmpty.textContent = list ? t('agents.none') : t('loading');
  dom.agentsEmpty.hidden = Boolean(list && list.length);
  if (!list) return;

  const thr = state.sla.reply_ms;
  for (const a of list) {
    const name = String(a.agent ?? '');
    const tr = el('tr', 'agent');
    tr.dataset.agent = name;
    const has = a.rounds > 0;

    const nameCell = el('td', 'name');
    const link = el('button', 'agent-link', visible(name));
    link.type = 'button';
    link.title = t('filterBy', name);
    link.dataset.agent = name;
    nameCell.append(link);

    const rounds = cell('num rounds', num(a.rounds ?? 0));
    if (Number.isFinite(a.answered)) rounds.title = t('answered', num(a.answered));

    const hits = el('td', 'hits');
    const byCount = Object.entries(a.hits && typeof a.hits === 'object' ? a.hits : {})
      .filter(([, n]) => n > 0).sort((x, y) => y[1] - x[1]);
    for (const [cat, n] of byCount) {
      const chip = el('span', `chip tone-${CATEGORY_TONE[cat] || 'other'}`, categoryLabel(cat) + ' ');
      chip.append(el('b', '', num(n)));
      hits.append(chip);
    }

    const chartCell = el('td', 'chart-cell');
    chartCell.append(hourChart(a.hours));

    tr.append(nameCell, rounds,
      // 0 is what the feed says when no first round closed yet
      cell('num first', a.first_rounds > 0 ? fmtSec(a.first_mean_ms) : '—',
        a.first_mean_ms > state.sla.first_response_ms),
      cell('num mean', has ? fmtSec(a.mean_ms) : '—', has && a.mean_ms > thr),
      cell('num p90', has ? fmtSec(a.p90_ms) : '—', has && a.p90_ms > thr),
      cell('num rate', has ? fmtPercent(a.rate) : '—', has && a.rate < RATE_LOW),
      cell('num breaches', num(a.breaches ?? 0), a.breaches > 0),
      cell('num escalations', num(a.escalations ?? 0), a.escalations > 0),
      hits, chartCell);
    dom.agentsBody.append(tr);
  }
}

/* ------------------------------------------------- header, banner, render */

function renderHeader() {
  dom.day.textContent = state.day ? t('day', state.day, fmtTz(state.tzOffsetMin)) : '';
  dom.conn.dataset.state = feed.state;
  dom.connText.textContent = t('conn.' + feed.state);

  // One banner, the worst news first: refused, lost, then Redis away (which
  // only the live feed can tell).
  const b = feed.state === 'denied' || feed.state === 'lost' ? feed.state
    : feed.state === 'live' && !state.redisOk ? 'redis' : '';
  if (b) {
    dom.banner.dataset.state = b;
    dom.banner.textContent = t('banner.' + b);
  } else {
    delete dom.banner.dataset.state;
    dom.banner.textContent = '';
  }
  dom.banner.hidden = !b;
  // waiting and agents are snapshots: dim them while they may be stale
  document.body.classList.toggle('stale', Boolean(b));
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    if (state.filterOptionsStale) renderFilterOptions();
    renderAlerts();
  });
}

/* --------------------------------------------------------------- language */

function loadLang() {
  const asked = params.get('lang');
  if (asked === 'en' || asked === 'zh') {
    saveLang(asked);
    return asked;
  }
  try {
    return localStorage.getItem('chatmon.dashboard.lang') === 'en' ? 'en' : 'zh';
  } catch {
    return 'zh';    // storage disabled: the default
  }
}

function saveLang(lang) {
  try {
    localStorage.setItem('chatmon.dashboard.lang', lang);
  } catch {
    // storage disabled: the choice lasts as long as the page
  }
}

function applyLanguage() {
  document.documentElement.lang = t('locale');
  document.title = t('title');
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  dom.lang.textContent = t('switchTo');
  dom.lang.title = t('switchToLabel');
  dom.lang.setAttribute('aria-label', t('switchToLabel'));
  dom.lang.lang = state.lang === 'zh' ? 'en' : 'zh-CN';
  renderWho();
  if (dom.loginError.dataset.key) dom.loginError.textContent = t(dom.loginError.dataset.key, dom.loginError.dataset.arg);
  // every row carries labels: build them all again
  rowCache = new Map();
  dom.alerts.replaceChildren();
  renderHeader();
  renderFilterOptions();
  renderAlerts();
  renderWaiting();
  renderAgents();
}

function toggleLanguage() {
  state.lang = state.lang === 'zh' ? 'en' : 'zh';
  saveLang(state.lang);
  // keep an explicit ?lang= in the address in step, so a reload agrees
  if (params.has('lang')) {
    params.set('lang', state.lang);
    history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
  }
  applyLanguage();
}

/* ------------------------------------------------------------------- feed */

function feedUrl() {
  const q = new URLSearchParams();
  if (feed.lastSid) q.set('since', feed.lastSid);
  if (TOKEN) q.set('token', TOKEN);
  const qs = q.toString();
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/feed${qs ? '?' + qs : ''}`;
}

function setFeedState(s) {
  feed.state = s;
  renderHeader();
}

function connect() {
  if (auth.locked || feed.ws) return;
  let opened = false;
  const ws = new WebSocket(feedUrl());
  feed.ws = ws;
  ws.addEventListener('open', () => {
    opened = true;
    feed.everOpened = true;
    feed.failures = 0;
    setFeedState('live');
  });
  ws.addEventListener('message', (ev) => onMessage(ev.data));
  ws.addEventListener('close', (ev) => {
    if (feed.ws !== ws) return;   // logged out: this one was closed on purpose
    feed.ws = null;
    // With logins, a feed that closes may mean the login ended (logout
    // elsewhere, expiry): ask, and show the form if so (connect then
    // does not retry).
    if (auth.logins && auth.user && (ev.code === 1008 || !opened)) checkLogin(true);
    if (!opened) feed.failures++;
    // A refused feed (HTTP 403) and a server that is down look the same to
    // a script: the socket closes before opening, code 1006, no status. So
    // guess. Once the feed has worked, a failure means the server went away
    // ("lost"). If it never opened, the server that just served this page
    // is probably up and refusing us: say "denied" at the first failure when
    // the page carries a token (a wrong one is the likely cause), after
    // DENIED_AFTER failures without one (the server may want a token).
    // Either way it keeps retrying.
    const denied = !feed.everOpened && (TOKEN !== '' || feed.failures >= DENIED_AFTER);
    setFeedState(denied ? 'denied' : 'lost');
    // ±20 % jitter: the pages of a whole team do not come back in step
    setTimeout(connect, feed.retryMs * (0.8 + Math.random() * 0.4));
    feed.retryMs = Math.min(feed.retryMs * 2, RETRY_MAX_MS);
  });
}

function onMessage(data) {
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return;         // not JSON: nothing the page can use
  }
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'hello':
      // Only a working feed resets the reconnect pause: a server that
      // accepts and drops at once still gets growing pauses.
      feed.retryMs = RETRY_FIRST_MS;
      if (m.sla && typeof m.sla === 'object') Object.assign(state.sla, m.sla);
      if (m.day) state.day = String(m.day);
      if (Number.isFinite(m.tz_offset_min) && m.tz_offset_min !== state.tzOffsetMin) {
        state.tzOffsetMin = m.tz_offset_min;
        rowCache = new Map();   // the rows' times are in that zone: draw them again
        dom.alerts.replaceChildren();
        scheduleRender();
      }
      state.redisOk = true;     // until `status` says otherwise, right after
      renderHeader();
      renderAgents();
      break;
    case 'status':
      state.redisOk = m.redis !== false;
      renderHeader();
      break;
    case 'alerts':
      takeAlerts(m);
      break;
    case 'waiting':
      takeWaiting(m);
      break;
    case 'agents':
      takeAgents(m);
      break;
    default:
      break;        // a newer server's message: ignore
  }
}

/* ------------------------------------------------------------------ login */

function renderWho() {
  dom.who.hidden = !auth.user;
  dom.logout.hidden = !auth.user;
  dom.who.textContent = auth.user ? t('who', auth.user, auth.role) : '';
}

function showLogin() {
  auth.locked = true;
  auth.user = '';
  auth.role = '';
  if (feed.ws) {
    const ws = feed.ws;
    feed.ws = null;
    ws.close();
  }
  // what the last user saw goes with them
  state.kept = [];
  state.keptKeys = new Set();
  state.waiting = null;
  state.agents = null;
  state.agentsSeen = new Set();
  state.alertsLoaded = false;
  feed.lastSid = '';
  rowCache = new Map();
  dom.alerts.replaceChildren();
  renderAlerts();
  renderWaiting();
  renderAgents();
  dom.app.hidden = true;
  dom.conn.hidden = true;     // no feed to speak of until a login
  dom.banner.hidden = true;
  dom.login.hidden = false;
  renderWho();
  dom.loginPassword.value = '';
  dom.loginUser.focus();
}

function showApp() {
  auth.locked = false;
  dom.login.hidden = true;
  dom.app.hidden = false;
  dom.conn.hidden = false;
  renderWho();
  applyLanguage();
}

function loginError(key, arg) {
  dom.loginError.dataset.key = key;
  dom.loginError.dataset.arg = arg === undefined ? '' : String(arg);
  dom.loginError.textContent = t(key, arg);
  dom.loginError.hidden = false;
}

// GET /api/login: never 401, so asking logs no error in the console.
async function checkLogin(again) {
  let me = null;
  try {
    const r = await fetch('/api/login', { credentials: 'same-origin', cache: 'no-store' });
    if (r.ok) me = await r.json();
  } catch {
    me = null;      // the server is away: the feed's retries will say so
  }
  if (me && me.logins) {
    auth.logins = true;
    if (me.user) {
      auth.user = String(me.user);
      auth.role = String(me.role || '');
      renderWho();
    } else if (!TOKEN) {
      showLogin();  // the wallboard's token opens the feed without a login
      return;
    }
  }
  if (!again) {
    showApp();
    connect();
  }
}

async function submitLogin(ev) {
  ev.preventDefault();
  dom.loginError.hidden = true;
  delete dom.loginError.dataset.key;
  dom.loginSubmit.disabled = true;
  try {
    // JSON, not a form post: the server refuses other types (the CSRF defence)
    const r = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: dom.loginUser.value, password: dom.loginPassword.value }),
    });
    dom.loginPassword.value = '';
    if (r.ok) {
      const me = await r.json();
      auth.user = String(me.user);
      auth.role = String(me.role || '');
      feed.failures = 0;
      feed.everOpened = false;
      feed.retryMs = RETRY_FIRST_MS;
      showApp();
      connect();
    } else if (r.status === 429) {
      const s = Number(r.headers.get('Retry-After')) || 60;
      loginError('login.limited', Math.ceil(s / 60));
    } else if (r.status === 401) {
      loginError('login.failed');
    } else {
      loginError('login.error');
    }
  } catch {
    loginError('login.error');
  } finally {
    dom.loginSubmit.disabled = false;
  }
}

async function logout() {
  try {
    await fetch('/api/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
  } catch {
    // the server is away: the cookie stays, but the page forgets the user
  }
  showLogin();
}

/* ------------------------------------------------------------------ start */

for (const s of SEVERITIES) dom.sevBoxes[s].addEventListener('change', onFilterChange);
dom.category.addEventListener('change', onFilterChange);
dom.agent.addEventListener('change', onFilterChange);
dom.lang.addEventListener('click', toggleLanguage);
dom.loginForm.addEventListener('submit', submitLogin);
dom.logout.addEventListener('click', logout);
// an agent's name in the agents table filters the alerts to that agent
dom.agentsBody.addEventListener('click', (ev) => {
  const link = ev.target.closest('.agent-link');
  if (!link) return;
  state.filter.agent = link.dataset.agent;
  renderFilterOptions();
  renderAlerts();
});

state.lang = loadLang();
applyLanguage();
setInterval(tick, TICK_MS);
checkLogin(false);
