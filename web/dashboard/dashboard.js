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
const MAX_PINNED = 50;          // rows of the pinned block (unhandled criticals)
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
    'banner.deniedLogin': '看板服务器拒绝了实时数据连接。若看板在反向代理后面，请管理员把 dashboard.public_url 设为此页的地址。仍在重试…',
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
    'filter.shop': '店铺',
    'filter.allShops': '全部店铺',
    'filter.noShop': '未分店铺',
    'filter.queue': '队列',
    'filter.allQueues': '全部队列',
    'agents.noShop': '未分店铺',
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
    'agents.nonePast': '这一天没有结束的轮次',
    'past.note': (d) => `${d}（历史，不再更新）`,
    'alerts.nonePast': '这一天没有告警',
    'alerts.partialPast': ' · 只列出了这一天较晚的一部分告警',
    'alerts.nonePartial': '这一天较晚的告警中没有可显示的（更早的未读）',
    'daypick.label': '查看日期',
    'daypick.today': '回到今天',
    'report.download': '下载报表',
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
    // at a glance (the strip under the header)
    'glance.label': '概览',
    'glance.waiting': '等待中',
    'glance.longest': '最长等待',
    'glance.breaches': '今日超时',
    'glance.blocks': '今日拦截',
    'glance.rate': (d) => `团队${d}回复率`,
    'glance.critical': '待处理严重告警',
    'glance.blocksNote': '内存中今日告警里被拦截的条数',
    notify: '声音提醒',
    'notify.title': '新的严重告警和超时：响一声并弹出浏览器通知（只对这台电脑上的这个浏览器生效）',
    'notify.one': (what, who) => `${what} · ${who}`,
    'notify.many': (n) => `${n} 条新的严重告警或超时`,
    titleCount: (n, title) => `(${n}) ${title}`,
    // handling
    'pinned.title': '待处理',
    'pinned.note': '未处理的严重告警，处理后移出',
    'pinned.count': (n, shown) => shown ? `${n} 条 · 显示最新 ${shown} 条` : `${n} 条`,
    'state.unhandled': '未处理',
    'state.acked': '已确认',
    'state.assigned': '已指派',
    'state.resolved': '已解决',
    'state.false_positive': '误报',
    'handling.by': (by, when) => `${by} · ${when}`,
    'handling.assignee': (who) => `指派给 ${who}`,
    'handling.note': (n) => `备注：${n}`,
    'handling.reason': (r) => `原因：${r}`,
    'act.ack': '确认',
    'act.assign': '指派',
    'act.resolve': '解决',
    'act.fp': '误报',
    'act.ackTitle': '表示已看到并在跟进',
    'act.assign.label': '指派给（主管用户名）',
    'act.resolve.label': '处理说明',
    'act.fp.label': '误报原因（必填）',
    'act.assign.submit': '指派',
    'act.resolve.submit': '标记已解决',
    'act.fp.submit': '标记误报',
    'act.cancel': '取消',
    'act.busy': '提交中…',
    'err.400': (m) => `请求无效${m ? '：' + m : ''}`,
    'err.401': '登录已失效，请重新登录。',
    'err.403': '没有权限：需要主管角色。',
    'err.403shop': '没有权限：这个账号只能看自己的店铺，请在“店铺”里选其中一家。',
    'err.404': '找不到这条记录（可能已过期）。',
    'err.413': '内容太长。',
    'err.503': (m) => `看板服务器暂时做不到${m ? '：' + m : '（连不上 Redis）'}，请稍后再试。`,
    'err.other': (s) => `操作失败（${s}），请稍后再试。`,
    'err.network': '连不上看板服务器，请稍后再试。',
    // conversation view
    openConv: '查看会话',
    'conv.title': (id) => `会话 ${id}`,
    'conv.close': '关闭',
    'conv.nick': (n) => `买家 ${n}`,
    'conv.agent': (a) => `客服 ${a}`,
    'conv.waiting': (clock, kind) => `买家已等待 ${clock} · ${kind}`,
    'conv.notWaiting': '现在没有等待回复',
    'conv.turns': '对话',
    'conv.noTurns': '没有保存的对话记录（记录保留时间有限）',
    'conv.customer': '买家',
    'conv.agentRole': '客服',
    'conv.robot': '机器人',
    'conv.cut': (n) => `…(共 ${n} 字节,只保留开头)`,
    'conv.blocked': '已拦截，买家未收到',
    'conv.alerts': '本会话的告警',
    'conv.noAlerts': '没有告警',
    'conv.notes': '给客服的悄悄话',
    'conv.noNotes': '还没有发过',
    'conv.notFound': '没有这段会话的记录（可能已过期）。',
    'conv.loading': '正在加载会话…',
    'note.sent': '已发送',
    'note.delivered': '已送达',
    'note.read': '已读',
    'note.placeholder': (a) => `发给 ${a} 的提示，只有客服能看到，买家看不到`,
    'note.send': '发送',
    'note.noAgent': '不知道这段会话的客服，无法发送。',
    'note.from': (f) => `${f}`,
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
    'banner.deniedLogin': 'The dashboard server refused the live feed. If the dashboard is behind a reverse proxy, ask the administrator to set dashboard.public_url to this page\'s address. Still retrying…',
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
    'filter.shop': 'Shop',
    'filter.allShops': 'All shops',
    'filter.noShop': 'No shop',
    'filter.queue': 'Queue',
    'filter.allQueues': 'All queues',
    'agents.noShop': 'No shop',
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
    'agents.nonePast': 'No round closed that day',
    'past.note': (d) => `${d} (a past day, not live)`,
    'alerts.nonePast': 'No alerts that day',
    'alerts.partialPast': " · only the day's latest alerts are listed",
    'alerts.nonePartial': "None among the day's latest alerts (older ones not read)",
    'daypick.label': 'Day',
    'daypick.today': 'Back to today',
    'report.download': 'Download report',
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
    'glance.label': 'At a glance',
    'glance.waiting': 'Waiting now',
    'glance.longest': 'Longest wait',
    'glance.breaches': 'Breaches today',
    'glance.blocks': 'Blocks today',
    'glance.rate': (d) => `Team ${d} rate`,
    'glance.critical': 'Unhandled critical',
    'glance.blocksNote': 'blocked messages among today\'s alerts held by this page',
    notify: 'Sound alerts',
    'notify.title': 'New critical alerts and breaches: a beep and a browser notification (this browser on this computer only)',
    'notify.one': (what, who) => `${what} · ${who}`,
    'notify.many': (n) => `${n} new critical alerts or breaches`,
    titleCount: (n, title) => `(${n}) ${title}`,
    'pinned.title': 'To handle',
    'pinned.note': 'unhandled critical alerts, until someone handles them',
    'pinned.count': (n, shown) => shown ? `${n} · newest ${shown} shown` : String(n),
    'state.unhandled': 'Unhandled',
    'state.acked': 'Acknowledged',
    'state.assigned': 'Assigned',
    'state.resolved': 'Resolved',
    'state.false_positive': 'False positive',
    'handling.by': (by, when) => `${by} · ${when}`,
    'handling.assignee': (who) => `to ${who}`,
    'handling.note': (n) => `note: ${n}`,
    'handling.reason': (r) => `reason: ${r}`,
    'act.ack': 'Acknowledge',
    'act.assign': 'Assign',
    'act.resolve': 'Resolve',
    'act.fp': 'False positive',
    'act.ackTitle': 'Seen, being followed up',
    'act.assign.label': 'Assign to (supervisor user name)',
    'act.resolve.label': 'What was done',
    'act.fp.label': 'Why it is a false positive (required)',
    'act.assign.submit': 'Assign',
    'act.resolve.submit': 'Mark resolved',
    'act.fp.submit': 'Mark false positive',
    'act.cancel': 'Cancel',
    'act.busy': 'Sending…',
    'err.400': (m) => `Refused${m ? ': ' + m : ''}`,
    'err.401': 'Your sign-in has ended: sign in again.',
    'err.403': 'Not allowed: this needs the supervisor role.',
    'err.403shop': 'Not allowed: this sign-in sees its own shops only; pick one of them under Shop.',
    'err.404': 'Not found (it may have expired).',
    'err.413': 'Too long.',
    'err.503': (m) => `The dashboard server could not do it${m ? ': ' + m : ' (it cannot reach Redis)'}; try again later.`,
    'err.other': (s) => `Failed (${s}): try again later.`,
    'err.network': 'The dashboard server cannot be reached: try again later.',
    openConv: 'Open the conversation',
    'conv.title': (id) => `Conversation ${id}`,
    'conv.close': 'Close',
    'conv.nick': (n) => `buyer ${n}`,
    'conv.agent': (a) => `agent ${a}`,
    'conv.waiting': (clock, kind) => `The buyer has waited ${clock} · ${kind}`,
    'conv.notWaiting': 'Nobody waits for an answer now',
    'conv.turns': 'Chat',
    'conv.noTurns': 'No chat kept for it (history is kept for a limited time)',
    'conv.customer': 'Buyer',
    'conv.agentRole': 'Agent',
    'conv.robot': 'Robot',
    'conv.cut': (n) => `… (${n} bytes, the start kept)`,
    'conv.blocked': 'Blocked: the buyer never got it',
    'conv.alerts': 'Alerts of this conversation',
    'conv.noAlerts': 'No alerts',
    'conv.notes': 'Whispers to the agent',
    'conv.noNotes': 'None sent yet',
    'conv.notFound': 'Nothing is known of this conversation (it may have expired).',
    'conv.loading': 'Loading the conversation…',
    'note.sent': 'Sent',
    'note.delivered': 'Delivered',
    'note.read': 'Read',
    'note.placeholder': (a) => `A hint for ${a}: the agent sees it, the buyer never does`,
    'note.send': 'Send',
    'note.noAgent': 'The conversation\'s agent is not known: nothing can be sent.',
    'note.from': (f) => `${f}`,
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
  filter: { sev: { critical: true, warn: true, info: true }, category: '', agent: '', shop: '', queue: '' },
  // shop id -> { name, queues: Set }: the configured ones the login sees
  // (hello) and those the data names; a login of some shops gets only theirs
  shops: new Map(),
  waiting: null,          // last `waiting` message, plus `at`: performance.now() at arrival
  waitRows: [],           // { el, wait, fill, base, threshold, level, text }
  agents: null,           // last `agents` message
  agentsSig: '',          // ... as JSON, to skip repeats
  handling: new Map(),    // alert id -> its handling (the feed's `handling`, POST answers)
  notes: new Map(),       // note id -> note with its state (the feed's `note`, the API's answers)
  pending: [],            // unhandled critical entries, newest first (the pinned block)
  notify: false,          // sound and notification for new criticals and breaches (opt-in)
  // a past day picked in #day-pick: its report and its alerts (GET
  // /api/report, GET /api/alerts?day=) stand in for the live agents and
  // alerts until today is picked again; null: today, live
  past: null,             // { day, report, kept, loading, error }
  pastSeq: 0,             // drops an answer a newer pick overtook
  highlight: params.get('alert') || '',   // ?alert=ID: that alert stands out
};

// The open conversation view: `seq` drops an answer that a newer request overtook.
const conv = { id: '', agent: '', data: null, seq: 0, loading: false, error: '', wait: null, refresh: 0, turnsSig: '' };

// Who is logged in (GET /api/login); logins: whether the dashboard has any.
// shops: the login's (GET /api/login), null every shop: the server keeps it to them
const auth = { logins: false, user: '', role: '', locked: false, shops: null };

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
  shopPick: $('shop-pick'), shop: $('f-shop'), queue: $('f-queue'),
  waiting: $('waiting'), waitingEmpty: $('waiting-empty'), waitingCount: $('waiting-count'),
  agentsBody: document.querySelector('#agents tbody'), agentsEmpty: $('agents-empty'),
  agentsNote: $('agents-note'), colRate: $('col-rate'), colChart: $('col-chart'),
  app: $('app'), login: $('login'), loginForm: $('login-form'), loginUser: $('login-user'),
  loginPassword: $('login-password'), loginError: $('login-error'),
  loginSubmit: $('login-submit'), who: $('who'), logout: $('logout'),
  notify: $('notify'), notifyToggle: $('notify-toggle'), glance: $('glance'), gRateLabel: $('g-rate-label'),
  glanceValues: Object.fromEntries(['waiting', 'longest', 'breaches', 'blocks', 'rate', 'critical']
    .map((k) => [k, document.querySelector(`#g-${k} .g-value`)])),
  pinnedBlock: $('pinned-block'), pinned: $('pinned'), pinnedCount: $('pinned-count'),
  conv: $('conv'), convTitle: $('conv-title'), convNick: $('conv-nick'), convAgent: $('conv-agent'),
  convClose: $('conv-close'), convWait: $('conv-wait'), convError: $('conv-error'),
  convTurns: $('conv-turns'), convAlerts: $('conv-alerts'), convNotes: $('conv-notes'),
  noteForm: $('note-form'), noteText: $('note-text'), noteSend: $('note-send'), noteError: $('note-error'),
  dayPick: $('day-pick'), dayToday: $('day-today'), reportCsv: $('report-csv'), reportHtml: $('report-html'),
  agentsDay: $('agents-day'), alertsDay: $('alerts-day'),
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

// A tooltip (title) of data: what visible() shows, its line breaks kept
// (a tooltip shows them as lines). Tooltips read as the text does: a raw
// U+202E there would reorder what the supervisor reads just the same.
function visibleLines(s) {
  return String(s).split('\n').map(visible).join('\n');
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
function rateDur() {
  return fmtDur(state.sla.rate_ms).replace(/ /g, state.lang === 'zh' ? '' : '-');
}

function rateLabel() {
  return t('col.rate', rateDur());
}

function categoryLabel(c) {
  return STRINGS[state.lang]['cat.' + c] || c;
}

/* ----------------------------------------------------------------- alerts */

const ACTION_RANK = { block: 0, warn: 1, flag: 2 };
const SEVERITY_RANK = { critical: 0, warn: 1, info: 2 };

// The hits of a rule.hit alert, strongest first (docs/alerts.md): v2's
// `hits`, or a v1 alert's one rule at the top level. The server sends them
// in that order already; the stable sort only guards the order the page
// shows (block, warn, flag; then severity; then the server's rule order).
function hitsOf(a) {
  const top = {
    rule: a.rule, category: a.category, severity: a.severity, action: a.action,
    match: a.match, matched: a.matched, message: a.message,
  };
  const given = Array.isArray(a.hits) ? a.hits.filter((h) => h && typeof h === 'object') : [];
  if (!given.length) return [top];
  return given.map((h, i) => ({ h, i })).sort((x, y) =>
    (ACTION_RANK[x.h.action] ?? 3) - (ACTION_RANK[y.h.action] ?? 3) ||
    (SEVERITY_RANK[x.h.severity] ?? 3) - (SEVERITY_RANK[y.h.severity] ?? 3) ||
    x.i - y.i).map((x) => x.h);
}

// One kept alert, with what the filters and the row need worked out once.
function entry(sid, a) {
  const sla = SLA_TYPES.includes(a.type);
  const hits = sla ? [] : hitsOf(a);
  const category = sla ? 'sla' : String(a.category ?? '');
  return {
    key: typeof a.id === 'string' ? a.id : sid,
    id: typeof a.id === 'string' ? a.id : '',
    alert: a,
    sla,
    hits,
    severity: SEVERITIES.includes(a.severity) ? a.severity : 'info',
    category,
    // the category filter finds an alert by any of its hits
    categories: sla ? ['sla'] : [...new Set([category, ...hits.map((h) => String(h.category ?? ''))])].filter(Boolean),
    blocked: a.action === 'block' || hits.some((h) => h.action === 'block'),
    agent: String(a.agent ?? ''),
    conversation: String(a.conversation ?? ''),
    shop: String(a.shop ?? ''),
    queue: String(a.queue ?? ''),
    time: Date.parse(a.ts),
  };
}

/* ------------------------------------------------------------------ shops */

// The shop filter's value for what has no shop: a space, which no shop id has.
const NO_SHOP = ' ';

// A shop (and queue) the data names: the filters offer it from now on.
function noteShop(shop, queue) {
  if (!shop) return;
  let s = state.shops.get(shop);
  if (!s) {
    s = { name: '', queues: new Set() };
    state.shops.set(shop, s);
    state.filterOptionsStale = true;
  }
  if (queue && !s.queues.has(queue)) {
    s.queues.add(queue);
    state.filterOptionsStale = true;
  }
}

// The configured shops of hello: [{id, name?, queues}].
function takeShops(list) {
  for (const c of Array.isArray(list) ? list : []) {
    if (!c || typeof c.id !== 'string') continue;
    noteShop(c.id, '');
    if (typeof c.name === 'string') state.shops.get(c.id).name = c.name;
    for (const q of Array.isArray(c.queues) ? c.queues : []) noteShop(c.id, String(q));
  }
  state.filterOptionsStale = true;
  scheduleRender();
}

// "天猫旗舰店 (tmall)", or the id alone when it has no name.
function shopLabel(shop) {
  const s = state.shops.get(shop);
  return s && s.name ? `${visible(s.name)} (${visible(shop)})` : visible(shop);
}

// Whether a row of (shop, queue) ("" none) passes the shop and queue filters.
function shopPasses(shop, queue) {
  const f = state.filter;
  if (f.shop === NO_SHOP) return !shop;
  return (!f.shop || shop === f.shop) && (!f.queue || queue === f.queue);
}

function takeAlerts(m) {
  // alerts that came after the page had its history: those may ring
  const live = state.alertsLoaded && !m.reset;
  state.alertsLoaded = true;
  if (m.reset) {
    state.kept.length = 0;
    state.keptKeys.clear();
  }
  const fresh = [];
  const handled = [];
  for (const item of Array.isArray(m.alerts) ? m.alerts : []) {
    if (!item || typeof item !== 'object') continue;
    if (typeof item.sid === 'string') feed.lastSid = item.sid;
    const a = item.alert;
    // docs/alerts.md: readers skip the types they do not know.
    if (!a || typeof a !== 'object' || (a.type !== 'rule.hit' && !SLA_TYPES.includes(a.type))) continue;
    const e = entry(item.sid, a);
    if (e.id && item.handling && typeof item.handling === 'object') {
      state.handling.set(e.id, item.handling);
      handled.push(e.id);
    }
    if (state.keptKeys.has(e.key)) continue;
    state.kept.push(e);
    state.keptKeys.add(e.key);
    if (live) fresh.push(e);
    if (e.agent && !state.agentsSeen.has(e.agent)) {
      state.agentsSeen.add(e.agent);
      state.filterOptionsStale = true;
    }
    noteShop(e.shop, e.queue);
    for (const c of e.sla ? [] : e.categories) {
      if (!KNOWN_CATEGORIES.has(c) && !state.otherCategories.has(c)) {
        state.otherCategories.add(c);
        state.filterOptionsStale = true;
      }
    }
    if (conv.id && e.conversation === conv.id) convRefreshSoon();
  }
  const excess = state.kept.length - MAX_KEPT;
  if (excess > 0) {
    for (const e of state.kept.splice(0, excess)) state.keptKeys.delete(e.key);
  }
  if (handled.length) repaintHandling(handled);
  if (fresh.length) ring(fresh);
  scheduleRender();
}

function passes(e) {
  const f = state.filter;
  return f.sev[e.severity] && (!f.category || e.categories.includes(f.category)) && (!f.agent || e.agent === f.agent) &&
    shopPasses(e.shop, e.queue);
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
  if (from > 0 || to < n) span.title = visibleLines(text);
  return span;
}

// Every hit of a grouped alert, strongest first: one line each, what it
// is, what it matched, the coaching text.
function hitsList(hits) {
  const list = el('ol', 'hits-list');
  hits.forEach((h, i) => {
    const li = el('li', i === 0 ? 'hit hit-top' : 'hit');
    const sev = SEVERITIES.includes(h.severity) ? h.severity : 'info';
    Object.assign(li.dataset, {
      rule: String(h.rule ?? ''), category: String(h.category ?? ''), severity: sev, action: String(h.action ?? ''),
    });
    li.append(el('span', `dot sev-${sev}`));
    const what = el('span', 'hit-what', categoryLabel(String(h.category ?? '')));
    if (h.rule) what.title = visible(h.rule);
    li.append(what);
    if (h.action === 'block') li.append(el('span', 'badge blocked', t('blocked')));
    if (typeof h.matched === 'string' && h.matched) li.append(el('span', 'hit-match', visible(h.matched)));
    if (h.message) {
      const coach = el('span', 'hit-coach', visible(h.message));
      coach.title = visibleLines(h.message);
      li.append(coach);
    }
    list.append(li);
  });
  return list;
}

function alertRow(e) {
  const a = e.alert;
  const row = el('div', `alert sev-${e.severity}`);
  Object.assign(row.dataset, {
    id: String(a.id ?? ''), severity: String(a.severity ?? ''), type: a.type,
    category: e.category, agent: e.agent, blocked: String(e.blocked),
    conversation: e.conversation, hits: String(e.hits.length), shop: e.shop, queue: e.queue,
  });
  if (state.highlight && e.id === state.highlight) row.classList.add('highlight');

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
    if (a.rule) w.title = visible(a.rule);
    what.append(w);
    if (e.blocked) what.append(el('span', 'badge blocked', t('blocked')));
  }

  const who = el('div', 'c-who');
  const convLink = el('button', 'conv conv-link', visible(e.conversation));
  convLink.type = 'button';
  convLink.title = t('openConv');
  who.append(el('span', 'agent', visible(e.agent)), convLink);
  if (e.shop) who.append(el('span', 'shop', shopLabel(e.shop) + (e.queue ? ' · ' + visible(e.queue) : '')));
  who.title = [e.agent, e.conversation, e.shop, e.queue].filter(Boolean).map(visible).join(' · ');   // all may be cut short on screen

  const body = el('div', 'c-body');
  if (e.sla) {
    body.append(el('div', 'sla-line', t('slaLine', fmtDur(a.waited_ms), fmtDur(a.threshold_ms))));
  } else {
    const line = el('div', 'msg');
    if (a.role === 'customer') line.append(el('span', 'role', t('buyer')));
    line.append(messageText(a));
    body.append(line);
    if (e.hits.length > 1) {
      body.append(hitsList(e.hits));
    } else if (a.message) {
      const coach = el('div', 'coach', visible(a.message));
      coach.title = visibleLines(a.message);    // one line on screen, the whole in the tooltip
      body.append(coach);
    }
  }

  const count = el('div', 'c-count');
  if (Number.isInteger(a.count) && a.count > 1) {
    count.textContent = '×' + a.count;
    count.title = t('folded', a.count);
  }

  row.append(time, sev, what, who, body, count);
  if (e.id) row.append(handleBox(e.id, row));
  return row;
}

// Rows of the alerts drawn last time, by key: a row is built once and
// moved, not rebuilt, while its alert stays among the newest 200 shown.
// The pinned block has rows of its own (an alert may be in both).
let rowCache = new Map();
let pinCache = new Map();

// Make `list` hold the rows of `entries` in that order, reusing the rows
// of `cache`; returns the new cache. The usual change is a few new rows on
// top and as many gone at the bottom: that costs those only.
function reconcile(list, entries, cache) {
  const next = new Map();
  let cursor = list.firstElementChild;
  for (const e of entries) {
    const row = cache.get(e.key) || alertRow(e);
    next.set(e.key, row);
    if (row === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(row, cursor);
  }
  while (cursor) {
    const gone = cursor;
    cursor = cursor.nextElementSibling;
    gone.remove();
  }
  return next;
}

function renderAlerts() {
  const drawn = [];
  const pending = [];
  let matching = 0;
  const perSeverity = { critical: 0, warn: 0, info: 0 };
  // a past day's alerts in the list; the pinned block stays live
  const shown = state.past ? state.past.kept : state.kept;
  for (let i = state.kept.length - 1; i >= 0; i--) {
    const e = state.kept[i];
    if (e.severity === 'critical' && e.id && !state.handling.has(e.id)) pending.push(e);
  }
  for (let i = shown.length - 1; i >= 0; i--) {
    const e = shown[i];
    perSeverity[e.severity]++;
    if (!passes(e)) continue;
    matching++;
    if (drawn.length < MAX_DRAWN) drawn.push(e);
  }
  rowCache = reconcile(dom.alerts, drawn, rowCache);

  // the pinned block: unhandled criticals, whatever the filters, until
  // someone handles them
  state.pending = pending;
  pinCache = reconcile(dom.pinned, pending.slice(0, MAX_PINNED), pinCache);
  dom.pinnedBlock.hidden = pending.length === 0;
  dom.pinnedCount.textContent = t('pinned.count', num(pending.length),
    pending.length > MAX_PINNED ? num(MAX_PINNED) : '');

  for (const s of SEVERITIES) dom.sevCounts[s].textContent = num(perSeverity[s]);
  dom.alertsCount.textContent = t('alerts.count', num(drawn.length), num(matching), num(shown.length)) +
    (state.past && state.past.partial ? t('alerts.partialPast') : '');
  dom.alertsEmpty.textContent = drawn.length ? ''
    : state.past ? (state.past.error || t(shown.length ? 'alerts.filtered' : state.past.loading ? 'loading'
      : state.past.partial ? 'alerts.nonePartial' : 'alerts.nonePast'))
    : t(state.kept.length ? 'alerts.filtered' : state.alertsLoaded ? 'alerts.none' : 'loading');
  dom.alertsEmpty.hidden = drawn.length > 0;
  renderGlance();
  if (conv.id) renderConvAlerts();
}

// A row, or the conversation view, opens the conversation; not a click on
// its buttons and forms, nor the end of selecting its text.
function onRowClick(ev) {
  const row = ev.target.closest('.alert, .waiting');
  if (!row || ev.target.closest('.handle') || (ev.target.closest('button, input, textarea, select, a')
    && !ev.target.closest('.conv-link'))) return;
  if (!ev.target.closest('.conv-link') && String(window.getSelection()) !== '') return;
  if (row.dataset.conversation) openConversation(row.dataset.conversation, row.dataset.agent || '');
}

/* --------------------------------------------------------------- handling */

// docs/dashboard.md, "Acting on alerts": a supervisor acknowledges,
// assigns, resolves or marks an alert a false positive with POST
// /api/alerts/ID; every page sees the change through the feed's `handling`.
// An alert counts as handled from its first state on: acknowledging one
// takes it out of the pinned block. Any state may follow any other (the
// API keeps the last, the audit stream all): a resolved alert may still
// turn out a false positive, so the buttons stay, acknowledge aside.
const HANDLING_STATES = ['acked', 'assigned', 'resolved', 'false_positive'];
const ACT_FORMS = {
  assign: { state: 'assigned', field: 'assignee', required: true, max: 64, multiline: false },
  resolve: { state: 'resolved', field: 'note', required: false, max: 1000, multiline: true },
  fp: { state: 'false_positive', field: 'reason', required: true, max: 1000, multiline: true },
};

function canAct() {
  return auth.role === 'supervisor';
}

// A moment as the page shows it: the clock, with the day when not today's.
function fmtWhen(ms) {
  if (!Number.isFinite(ms)) return '';
  const [day, clock] = dayClock(ms);
  return day === state.day ? clock : `${day} ${clock}`;
}

// The handling of one alert: its state (who, when, what they wrote) and,
// for supervisors, the buttons and the small form they open. `host` (the
// row) gets data-state too.
function handleBox(id, host) {
  const box = el('div', 'handle');
  box.dataset.id = id;
  box.host = host;
  box.append(el('span', 'h-status'), el('span', 'h-actions'));
  paintHandle(box);
  return box;
}

function paintHandle(box) {
  const h = state.handling.get(box.dataset.id) || null;
  const st = h && HANDLING_STATES.includes(h.state) ? h.state : h ? 'other' : 'unhandled';
  box.dataset.state = st;
  if (box.host) box.host.dataset.state = st;
  const status = box.querySelector('.h-status');
  status.replaceChildren();
  if (h) {
    status.append(el('span', `h-badge state-${st}`, STRINGS[state.lang]['state.' + st] || visible(h.state ?? '')));
    if (h.state === 'assigned' && h.assignee) status.append(el('span', 'h-assignee', t('handling.assignee', visible(h.assignee))));
    const by = el('span', 'h-by', t('handling.by', visible(h.by ?? ''), fmtWhen(Number(h.at))));
    status.append(by);
    for (const [k, key] of [['note', 'handling.note'], ['reason', 'handling.reason']]) {
      if (typeof h[k] === 'string' && h[k]) {
        const x = el('span', `h-${k}`, t(key, visible(h[k])));
        x.title = visibleLines(h[k]);
        status.append(x);
      }
    }
  } else if (box.host && box.host.classList.contains('conv-alert')) {
    status.append(el('span', 'h-badge state-unhandled', t('state.unhandled')));
  }
  const acts = box.querySelector('.h-actions');
  acts.replaceChildren();
  if (canAct()) {
    const kinds = h ? ['assign', 'resolve', 'fp'] : ['ack', 'assign', 'resolve', 'fp'];
    for (const k of kinds) {
      const b = el('button', `act act-${k}`, t('act.' + k));
      b.type = 'button';
      b.dataset.act = k;
      if (k === 'ack') b.title = t('act.ackTitle');
      acts.append(b);
    }
  }
  // nothing to say, nothing to do (a viewer, an alert nobody handled): no line
  box.hidden = !h && !acts.childElementCount && !(box.host && box.host.classList.contains('conv-alert'));
}

// Every box of these alerts (all when ids is null), wherever it is drawn.
function repaintHandling(ids) {
  const want = ids ? new Set(ids) : null;
  for (const box of document.querySelectorAll('.handle')) {
    if (!want || want.has(box.dataset.id)) paintHandle(box);
  }
  scheduleRender();       // the pinned block, the count in the title
}

function takeHandling(m) {
  const given = m.alerts && typeof m.alerts === 'object' ? m.alerts : {};
  if (m.reset) state.handling.clear();
  for (const [id, h] of Object.entries(given)) {
    if (h && typeof h === 'object') state.handling.set(id, h);
    else state.handling.delete(id);
  }
  repaintHandling(m.reset ? null : Object.keys(given));
}

function closeForm(box) {
  const f = box.querySelector('.h-form');
  if (f) f.remove();
  const err = box.querySelector('.act-error');
  if (err) err.remove();
}

function openForm(box, kind) {
  closeForm(box);
  const spec = ACT_FORMS[kind];
  const form = el('form', 'h-form');
  form.dataset.kind = kind;
  const label = el('label', '', t(`act.${kind}.label`));
  const input = el(spec.multiline ? 'textarea' : 'input', 'h-input');
  if (!spec.multiline) input.type = 'text';
  else input.rows = 2;
  input.name = spec.field;
  input.maxLength = spec.max;
  input.required = spec.required;
  label.append(input);
  const ok = el('button', 'h-submit', t(`act.${kind}.submit`));
  ok.type = 'submit';
  const cancel = el('button', 'h-cancel', t('act.cancel'));
  cancel.type = 'button';
  cancel.dataset.act = 'cancel';
  form.append(label, ok, cancel);
  box.append(form);
  input.focus();
}

function actError(box, text) {
  let err = box.querySelector('.act-error');
  if (!err) {
    err = el('span', 'act-error');
    err.setAttribute('role', 'alert');
    box.append(err);
  }
  err.textContent = text;
}

// JSON to and from /api/; { ok, status, doc, error } where error is the
// page's words for a refusal. A 401 means the login ended: ask, and the
// login form comes back.
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  let r;
  try {
    r = await fetch(path, {
      method, credentials: 'same-origin', cache: 'no-store', headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, doc: null, error: t('err.network') };
  }
  let doc = null;
  try {
    doc = await r.json();
  } catch {
    doc = null;
  }
  if (r.ok) return { ok: true, status: r.status, doc, error: '' };
  if (r.status === 401 && auth.logins) checkLogin(true);
  const said = doc && typeof doc.error === 'string' ? visible(doc.error) : '';
  // a login of some shops refused what is not of its shops: not a matter of
  // role; the server's words name the shop (dash_api.c), a role's do not
  const key = r.status === 403 && /\bshop/.test(said) ? 'err.403shop' : 'err.' + r.status;
  return { ok: false, status: r.status, doc, error: STRINGS[state.lang][key] ? t(key, said) : t('err.other', r.status) };
}

async function postHandling(box, body) {
  const id = box.dataset.id;
  for (const b of box.querySelectorAll('button')) b.disabled = true;
  const res = await api('POST', `/api/alerts/${encodeURIComponent(id)}`, body);
  for (const b of box.querySelectorAll('button')) b.disabled = false;
  if (!res.ok) {
    actError(box, res.error);
    return;
  }
  closeForm(box);
  if (res.doc && res.doc.handling && typeof res.doc.handling === 'object') {
    state.handling.set(id, res.doc.handling);
    repaintHandling([id]);
  }
}

// One listener for every box: the buttons, the forms.
function onHandleClick(ev) {
  const box = ev.target.closest('.handle');
  const b = ev.target.closest('button[data-act]');
  if (!box || !b || b.disabled) return;
  const kind = b.dataset.act;
  if (kind === 'cancel') closeForm(box);
  else if (kind === 'ack') postHandling(box, { state: 'acked' });
  else if (ACT_FORMS[kind]) openForm(box, kind);
}

function onHandleSubmit(ev) {
  const form = ev.target.closest('.h-form');
  if (!form) return;
  ev.preventDefault();
  const box = form.closest('.handle');
  const spec = ACT_FORMS[form.dataset.kind];
  const value = form.querySelector('.h-input').value.trim();
  if (spec.required && !value) return;
  const body = { state: spec.state };
  if (value) body[spec.field] = value;
  postHandling(box, body);
}

/* ------------------------------------------------------------- at a glance */

// The strip under the header: who waits now and the longest wait (live,
// from `waiting`), breaches and the team's reply rate today (from
// `agents`), messages blocked today (the alerts this page holds), and the
// unhandled criticals (the pinned block). The longest wait is redrawn by
// tick().
function renderGlance() {
  const g = dom.glanceValues;
  const w = state.waiting;
  g.waiting.textContent = w ? num(Number.isFinite(w.total) ? w.total : (w.rounds || []).length) : '—';
  const list = state.agents && Array.isArray(state.agents.agents) ? state.agents.agents : null;
  // the rate's base is what each agent's rate counts (rate_base: first
  // rounds on JD, buyer-days on Pinduoduo), every round when it is absent
  let breaches = 0, base = 0, within = 0, blocksFromFeed = null;
  for (const a of list || []) {
    breaches += Number(a.breaches) || 0;
    base += Number(a.rate_base ?? a.rounds) || 0;
    within += Number(a.within_rate) || 0;
    if (Number.isFinite(a.blocks)) blocksFromFeed = (blocksFromFeed || 0) + a.blocks;
  }
  g.breaches.textContent = list ? num(breaches) : '—';
  g.breaches.parentElement.classList.toggle('bad', breaches > 0);
  const rate = base > 0 ? within / base : NaN;
  g.rate.textContent = list ? fmtPercent(rate) : '—';
  g.rate.parentElement.classList.toggle('bad', rate < RATE_LOW);
  dom.gRateLabel.textContent = t('glance.rate', rateDur());
  // blocked today: the agents' figures when the server counts them, else
  // the alerts of today this page holds
  let blocks = blocksFromFeed;
  if (blocks === null) {
    blocks = 0;
    for (const e of state.kept) {
      if (e.blocked && Number.isFinite(e.time) && (!state.day || dayClock(e.time)[0] === state.day)) blocks++;
    }
    g.blocks.title = t('glance.blocksNote');
  } else {
    g.blocks.title = '';
  }
  g.blocks.textContent = state.alertsLoaded || blocksFromFeed !== null ? num(blocks) : '—';
  const n = state.pending.length;
  g.critical.textContent = state.alertsLoaded ? num(n) : '—';
  g.critical.parentElement.classList.toggle('bad', n > 0);
  tickGlance();
  renderTitle();
}

function tickGlance() {
  const w = state.waiting;
  const first = w && Array.isArray(w.rounds) && w.rounds.length ? w.rounds[0] : null;
  const v = dom.glanceValues.longest;
  if (!first) {
    v.textContent = w ? '0:00' : '—';
    v.parentElement.classList.remove('bad');
    return;
  }
  const waited = (Number(first.waited_ms) || 0) + performance.now() - w.at;
  const text = fmtClock(waited);
  if (v.textContent !== text) v.textContent = text;
  v.parentElement.classList.toggle('bad', waited >= (Number(first.threshold_ms) || state.sla.reply_ms));
}

function renderTitle() {
  const n = state.pending.length;
  const title = !auth.locked && n > 0 ? t('titleCount', n, t('title')) : t('title');
  if (document.title !== title) document.title = title;
}

/* ------------------------------------------------- sound and notification */

// Opt-in, remembered in this browser: a short beep (WebAudio, no file) and
// a browser notification for new critical alerts and SLA breaches that
// come while the page is open (not the history it loads).
let audio = null;

function loadNotify() {
  try {
    return localStorage.getItem('chatmon.dashboard.notify') === 'on';
  } catch {
    return false;
  }
}

function setNotify(on) {
  state.notify = on;
  dom.notify.checked = on;
  try {
    localStorage.setItem('chatmon.dashboard.notify', on ? 'on' : 'off');
  } catch {
    // storage disabled: the choice lasts as long as the page
  }
  if (!on) return;
  // both need the user's gesture: this click
  unlockAudio();
  if ('Notification' in window && Notification.permission === 'default') {
    Notification.requestPermission().catch(() => {});
  }
}

// Browsers start audio only after a gesture on the page: a remembered
// choice waits for the first click anywhere.
function unlockAudio() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  try {
    if (!audio) audio = new Ctx();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
  } catch {
    audio = null;
  }
}

function beep() {
  if (!audio) return;
  try {
    const now = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, now);
    osc.frequency.setValueAtTime(660, now + 0.12);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.28);
    osc.connect(gain).connect(audio.destination);
    osc.start(now);
    osc.stop(now + 0.3);
  } catch {
    // no sound: the notification and the page still say it
  }
}

let lastRing = 0;
function ring(fresh) {
  if (!state.notify) return;
  const loud = fresh.filter((e) => e.severity === 'critical' || e.alert.type === 'sla.breach');
  if (!loud.length) return;
  const now = Date.now();
  if (now - lastRing < 1000) return;      // a burst: once a second at most
  lastRing = now;
  beep();
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const e = loud[loud.length - 1];
  const what = e.sla ? t(e.alert.type, e.alert.first === true) : categoryLabel(e.category);
  const body = loud.length === 1 ? t('notify.one', what, `${visible(e.agent)} · ${visible(e.conversation)}`)
    : t('notify.many', loud.length);
  try {
    const n = new Notification(t('title'), { body, tag: 'chatmon-alert', silent: true });
    n.onclick = () => {
      window.focus();
      if (loud.length === 1 && e.conversation) openConversation(e.conversation, e.agent);
      n.close();
    };
  } catch {
    // some browsers allow notifications from a service worker only
  }
}

/* ------------------------------------------------------- the conversation */

// GET /api/conversation?id=ID: the chat both ways, who waits, the
// conversation's alerts with their handling, the notes to its agent with
// their state; a form for a new note. Opened from an alert row or a
// waiting row; it follows the feed (new alerts of the conversation and the
// waiting list fetch it again, `note` and `handling` messages change it in
// place) and fetches again every CONV_REFRESH_MS.
const CONV_REFRESH_MS = 10000;
const NOTE_RANK = { sent: 0, delivered: 1, read: 2 };

function openConversation(id, agentHint) {
  if (!id) return;
  const same = conv.id === id;
  conv.id = id;
  if (!same) {
    conv.data = null;
    conv.error = '';
    conv.wait = null;
    conv.agent = agentHint || '';
    dom.noteText.value = '';
    dom.noteError.hidden = true;
  } else if (agentHint && !conv.agent) {
    conv.agent = agentHint;
  }
  dom.conv.hidden = false;
  document.body.classList.add('conv-open');
  renderConv();
  loadConversation();
  dom.convClose.focus();
}

function closeConversation() {
  conv.id = '';
  conv.data = null;
  conv.seq++;
  clearTimeout(conv.refresh);
  dom.conv.hidden = true;
  document.body.classList.remove('conv-open');
}

let convSoon = 0;
function convRefreshSoon() {
  clearTimeout(convSoon);
  convSoon = setTimeout(loadConversation, 300);
}

async function loadConversation() {
  clearTimeout(conv.refresh);
  const id = conv.id;
  if (!id) return;
  const seq = ++conv.seq;
  conv.loading = true;
  // the id as a query argument: in the path, the server would see "a/../b" as "b"
  const res = await api('GET', `/api/conversation?id=${encodeURIComponent(id)}`);
  if (seq !== conv.seq || conv.id !== id) return;      // overtaken, or closed
  conv.loading = false;
  if (res.ok && res.doc && typeof res.doc === 'object') {
    conv.data = res.doc;
    conv.error = '';
    const w = res.doc.waiting;
    conv.wait = w && typeof w === 'object' ? { base: Number(w.waited_ms) || 0, at: performance.now(), round: w } : null;
    for (const item of Array.isArray(res.doc.alerts) ? res.doc.alerts : []) {
      const aid = item && item.alert && typeof item.alert.id === 'string' ? item.alert.id : '';
      // the feed's word is newer than this answer's; take it only for alerts the feed has not told about
      if (aid && item.handling && typeof item.handling === 'object' && !state.handling.has(aid)) {
        state.handling.set(aid, item.handling);
      }
    }
    for (const n of Array.isArray(res.doc.notes) ? res.doc.notes : []) takeNote(n, false);
  } else {
    conv.error = res.status === 404 ? t('conv.notFound') : res.error;
  }
  renderConv();
  // a conversation nothing is known of is not asked for again and again
  if (res.ok || res.status !== 404) conv.refresh = setTimeout(loadConversation, CONV_REFRESH_MS);
}

// A note's newest state: from the API or the feed, never going back
// (delivered after read would be an old message).
function takeNote(n, render = true) {
  if (!n || typeof n !== 'object' || typeof n.id !== 'string') return;
  const had = state.notes.get(n.id);
  if (had && (NOTE_RANK[had.state] ?? -1) > (NOTE_RANK[n.state] ?? -1)) {
    state.notes.set(n.id, { ...n, ...had });
  } else {
    state.notes.set(n.id, had ? { ...had, ...n } : n);
  }
  if (state.notes.size > 2000) state.notes.delete(state.notes.keys().next().value);
  if (render && conv.id && n.conversation === conv.id) renderConvNotes();
}

// The conversation's agent: the API's turns and waiting round, then the
// row it was opened from, then its alerts.
function convAgent() {
  const d = conv.data;
  if (d) {
    const turns = Array.isArray(d.turns) ? d.turns : [];
    for (let i = turns.length - 1; i >= 0; i--) if (turns[i] && turns[i].agent) return String(turns[i].agent);
    if (d.waiting && d.waiting.agent) return String(d.waiting.agent);
  }
  if (conv.agent) return conv.agent;
  for (let i = state.kept.length - 1; i >= 0; i--) {
    if (state.kept[i].conversation === conv.id && state.kept[i].agent) return state.kept[i].agent;
  }
  return '';
}

function renderConv() {
  if (!conv.id) return;
  const d = conv.data;
  dom.convTitle.textContent = t('conv.title', visible(conv.id));
  const nick = d && typeof d.nick === 'string' && d.nick ? d.nick : '';
  dom.convNick.textContent = nick ? t('conv.nick', visible(nick)) : '';
  dom.convNick.hidden = !nick;
  const agentName = convAgent();
  dom.convAgent.textContent = agentName ? t('conv.agent', visible(agentName)) : '';
  dom.convError.textContent = conv.error;
  dom.convError.hidden = !conv.error;
  renderConvTurns();
  renderConvAlerts();
  renderConvNotes();
  tickConv();
  dom.noteForm.hidden = !canAct();
  dom.noteText.placeholder = agentName ? t('note.placeholder', visible(agentName)) : t('note.noAgent');
  dom.noteText.disabled = !agentName;
  dom.noteSend.disabled = !agentName;
}

function renderConvTurns() {
  const d = conv.data;
  const turns = d && Array.isArray(d.turns) ? d.turns.filter((x) => x && typeof x === 'object') : null;
  // the same turns again (the periodic fetch): leave them, and the
  // supervisor's scrolling and selection, alone
  const sig = JSON.stringify([state.lang, conv.id, conv.error, d && d.nick, turns]);
  if (sig === conv.turnsSig) return;
  conv.turnsSig = sig;
  dom.convTurns.replaceChildren();
  if (!turns) {
    if (!conv.error) dom.convTurns.append(el('p', 'empty', t('conv.loading')));
    return;
  }
  if (!turns.length) {
    dom.convTurns.append(el('p', 'empty', t('conv.noTurns')));
    return;
  }
  const nick = typeof d.nick === 'string' ? d.nick : '';
  // oldest first, whatever order they came in
  const sorted = turns.map((x, i) => ({ x, i })).sort((p, q) =>
    (Number(p.x.ts) || 0) - (Number(q.x.ts) || 0) || p.i - q.i).map((p) => p.x);
  for (const turn of sorted) {
    // a robot's turn (an auto-reply) is the shop's, drawn on the agent's side
    const role = turn.robot === true ? 'robot' : turn.role === 'agent' ? 'agent' : 'customer';
    const div = el('div', `turn ${role === 'robot' ? 'agent robot' : role}`);
    Object.assign(div.dataset, { role, blocked: String(turn.blocked === true) });
    if (typeof turn.alert === 'string') div.dataset.alert = turn.alert;
    const head = el('div', 't-head');
    const whoName = role === 'agent' ? String(turn.agent ?? '') : role === 'robot' ? '' : String(turn.nick || nick || '');
    head.append(el('span', 't-role', t(role === 'agent' ? 'conv.agentRole' : role === 'robot' ? 'conv.robot' : 'conv.customer')));
    if (whoName) head.append(el('span', 't-name', visible(whoName)));
    head.append(el('span', 't-time', fmtWhen(Number(turn.ts))));
    // line breaks as lines; every other control character shown escaped
    const text = el('div', 't-text', (typeof turn.text === 'string' ? turn.text : '').split('\n').map(visible).join('\n') +
      (Number.isInteger(turn.cut) ? t('conv.cut', turn.cut) : ''));
    div.append(head, text);
    if (turn.blocked === true) div.append(el('span', 'badge blocked', t('conv.blocked')));
    dom.convTurns.append(div);
  }
  dom.convTurns.lastElementChild.scrollIntoView({ block: 'nearest' });
}

// The conversation's alerts: those of the API's answer and those the feed
// brought since, newest first, each with its handling.
function renderConvAlerts() {
  if (!conv.id) return;
  const byId = new Map();
  const d = conv.data;
  for (const item of d && Array.isArray(d.alerts) ? d.alerts : []) {
    if (item && item.alert && typeof item.alert === 'object') {
      const e = entry(item.sid, item.alert);
      byId.set(e.key, e);
    }
  }
  for (const e of state.kept) if (e.conversation === conv.id) byId.set(e.key, e);
  const list = [...byId.values()].sort((x, y) => (y.time || 0) - (x.time || 0));
  const keep = new Map();
  for (const row of dom.convAlerts.querySelectorAll('.conv-alert')) keep.set(row.dataset.key, row);
  // unchanged: touch nothing (a form being typed in keeps its focus)
  if (list.length && list.length === keep.size &&
    list.every((e, i) => dom.convAlerts.children[i] && dom.convAlerts.children[i].dataset.key === e.key)) return;
  dom.convAlerts.replaceChildren();
  if (!list.length) {
    dom.convAlerts.append(el('p', 'empty', d || conv.error ? t('conv.noAlerts') : t('conv.loading')));
    return;
  }
  for (const e of list) {
    let row = keep.get(e.key);
    if (!row) {
      row = el('div', `conv-alert sev-${e.severity}`);
      Object.assign(row.dataset, { key: e.key, id: e.id, severity: e.severity, type: e.alert.type });
      if (state.highlight && e.id === state.highlight) {
        row.classList.add('highlight');
        requestAnimationFrame(() => row.scrollIntoView({ block: 'nearest' }));
      }
      const time = el('span', 'c-time', Number.isFinite(e.time) ? fmtWhen(e.time) : '');
      const sev = el('span', `badge sev-${e.severity}`, t('sev.' + e.severity));
      const what = el('span', 'what', e.sla ? t(e.alert.type, e.alert.first === true)
        : e.hits.map((h) => categoryLabel(String(h.category ?? ''))).join(' · '));
      row.append(time, sev, what);
      if (e.blocked) row.append(el('span', 'badge blocked', t('blocked')));
      if (e.id) row.append(handleBox(e.id, row));
    }
    dom.convAlerts.append(row);
  }
}

function renderConvNotes() {
  if (!conv.id) return;
  const notes = [...state.notes.values()].filter((n) => n.conversation === conv.id)
    .sort((x, y) => (Number(x.ts) || 0) - (Number(y.ts) || 0));
  dom.convNotes.replaceChildren();
  if (!notes.length) {
    dom.convNotes.append(el('p', 'empty', conv.data || conv.error ? t('conv.noNotes') : t('conv.loading')));
    return;
  }
  for (const n of notes) {
    const st = NOTE_RANK[n.state] !== undefined ? n.state : 'sent';
    const div = el('div', `note state-${st}`);
    Object.assign(div.dataset, { id: n.id, state: st });
    const head = el('div', 'n-head');
    head.append(el('span', 'n-from', visible(n.from ?? '')), el('span', 'n-to', '→ ' + visible(n.agent ?? '')),
      el('span', 'n-time', fmtWhen(Number(n.ts))));
    const when = st === 'read' ? n.read_at : st === 'delivered' ? n.delivered_at : n.ts;
    const badge = el('span', `n-state state-${st}`, t('note.' + st) + (Number.isFinite(Number(when)) && st !== 'sent'
      ? ' ' + fmtWhen(Number(when)) : ''));
    head.append(badge);
    div.append(head, el('div', 'n-text', String(n.text ?? '').split('\n').map(visible).join('\n')));
    dom.convNotes.append(div);
  }
}

// The live counter of who waits: the feed's latest waiting snapshot when it
// lists the conversation, else the API's answer counted on.
function tickConv() {
  if (!conv.id) return;
  let round = null, waited = 0;
  const w = state.waiting;
  const live = w && Array.isArray(w.rounds) ? w.rounds.find((r) => r.conversation === conv.id) : null;
  if (live) {
    round = live;
    waited = (Number(live.waited_ms) || 0) + performance.now() - w.at;
  } else if (conv.wait) {
    round = conv.wait.round;
    waited = conv.wait.base + performance.now() - conv.wait.at;
  }
  const box = dom.convWait;
  if (!round) {
    if (box.dataset.state !== 'none') {
      box.dataset.state = 'none';
      box.textContent = conv.data ? t('conv.notWaiting') : '';
    }
    return;
  }
  box.dataset.state = 'waiting';
  const kind = t(round.first ? 'waiting.first' : 'waiting.reply');
  const who = round.agent ? ' · ' + t('conv.agent', visible(round.agent)) : '';
  const text = t('conv.waiting', fmtClock(waited), kind) + who;
  if (box.textContent !== text) box.textContent = text;
  const thr = Number(round.threshold_ms) || state.sla.reply_ms;
  box.classList.toggle('over', waited >= thr);
}

// The note being sent: the server makes one note of the requests that
// carry the same key, so a retry after "outcome unknown" (504) sends the
// same key, and a second note of the same words later sends a new one.
let noteDraft = null;

function noteKey(id, agentName, text) {
  if (!noteDraft || noteDraft.id !== id || noteDraft.agent !== agentName ||
      noteDraft.text !== text) {
    const b = crypto.getRandomValues(new Uint8Array(16));   // randomUUID wants https
    noteDraft = { id, agent: agentName, text,
                  key: Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('') };
  }
  return noteDraft.key;
}

async function sendNote(ev) {
  ev.preventDefault();
  const text = dom.noteText.value.trim();
  const agentName = convAgent();
  if (!text || !agentName || !conv.id) return;
  dom.noteSend.disabled = true;
  dom.noteError.hidden = true;
  const id = conv.id;
  const key = noteKey(id, agentName, text);
  const res = await api('POST', `/api/notes?agent=${encodeURIComponent(agentName)}`,
                        { conversation: id, text, key });
  dom.noteSend.disabled = false;
  if (!res.ok) {
    dom.noteError.textContent = res.error;
    dom.noteError.hidden = false;
    return;
  }
  if (noteDraft && noteDraft.key === key) noteDraft = null;
  if (conv.id === id) dom.noteText.value = '';
  if (res.doc && res.doc.note) takeNote(res.doc.note);
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

  dom.shopPick.hidden = state.shops.size === 0;
  const ids = [...state.shops.keys()].sort((x, y) => x.localeCompare(y));
  // a login of some shops is shown nothing without a shop: no such choice
  dom.shop.replaceChildren(option('', t('filter.allShops')),
    ...(auth.shops ? [] : [option(NO_SHOP, t('filter.noShop'))]),
    ...ids.map((id) => option(id, shopLabel(id))));
  dom.shop.value = state.filter.shop;
  // the queues of the shop picked, or of them all
  const queues = new Set();
  for (const [id, s] of state.shops) {
    if (!state.filter.shop || state.filter.shop === id) for (const q of s.queues) queues.add(q);
  }
  dom.queue.replaceChildren(option('', t('filter.allQueues')),
    ...[...queues].sort((x, y) => x.localeCompare(y)).map((q) => option(q, visible(q))));
  dom.queue.value = queues.has(state.filter.queue) ? state.filter.queue : '';
  dom.queue.disabled = state.filter.shop === NO_SHOP || queues.size === 0;
  state.filterOptionsStale = false;
}

function onFilterChange() {
  const asked = reportQueries().join('|');
  for (const s of SEVERITIES) state.filter.sev[s] = dom.sevBoxes[s].checked;
  state.filter.category = dom.category.value;
  state.filter.agent = dom.agent.value;
  const shop = dom.shop.value;
  if (shop !== state.filter.shop) {
    state.filter.shop = shop;
    state.filter.queue = '';      // another shop's queues
    renderFilterOptions();
  } else {
    state.filter.queue = dom.queue.value;
  }
  renderAlerts();       // at once, not at the next frame
  renderWaiting();
  renderAgents();
  renderDayPick();
  // a past day's figures are the report's: of the shop (and queue) now picked
  if (state.past && reportQueries().join('|') !== asked) pickDay(state.past.day);
}

/* ---------------------------------------------------------------- waiting */

function takeWaiting(m) {
  const had = state.waiting;
  state.waiting = { ...m, at: performance.now() };
  if (conv.id) {
    // the open conversation started or stopped waiting: its turns changed
    const listed = (w) => Boolean(w && Array.isArray(w.rounds) && w.rounds.some((r) => r.conversation === conv.id));
    if (listed(had) !== listed(state.waiting)) convRefreshSoon();
  }
  for (const r of Array.isArray(m.rounds) ? m.rounds : []) {
    const a = String(r.agent ?? '');
    noteShop(String(r.shop ?? ''), String(r.queue ?? ''));
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
  const all = Array.isArray(w.rounds) ? w.rounds : [];
  const rounds = all.filter((r) => shopPasses(String(r.shop ?? ''), String(r.queue ?? '')));
  // a shop picked: the count is of the rounds this page has of it
  const total = rounds.length < all.length ? rounds.length : Number.isFinite(w.total) ? w.total : rounds.length;
  dom.waitingCount.textContent = t('waiting.count', num(total), num(w.instances ?? 0)) +
    (total > rounds.length ? t('waiting.partial', num(rounds.length)) : '');
  dom.waitingEmpty.textContent = t('waiting.none');
  dom.waitingEmpty.hidden = rounds.length > 0;

  for (const r of rounds) {
    const row = el('div', 'waiting');
    Object.assign(row.dataset, {
      conversation: String(r.conversation ?? ''), agent: String(r.agent ?? ''), state: String(r.state ?? ''),
      shop: String(r.shop ?? ''), queue: String(r.queue ?? ''),
    });
    if (r.instance) row.title = visible(r.instance);
    const wait = el('div', 'wait');
    const main = el('div', 'w-main');
    main.append(el('span', 'conv', visible(r.conversation ?? '')), el('span', 'agent', visible(r.agent ?? '')));
    if (r.shop) main.append(el('span', 'shop', shopLabel(String(r.shop)) + (r.queue ? ' · ' + visible(r.queue) : '')));
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
  renderGlance();
  tick();
}

// The counters count on from waited_ms as of the message's arrival; the
// colour follows the count: amber from warn_at × threshold, red from the
// threshold, dark red from the escalation.
function tick() {
  tickConv();
  if (!state.waiting) return;
  tickGlance();
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
    noteShop(String(a.shop ?? ''), String(a.queue ?? ''));
    if (name && !state.agentsSeen.has(name)) {
      state.agentsSeen.add(name);
      state.filterOptionsStale = true;
      scheduleRender();
    }
  }
  if (m.day) state.day = String(m.day);
  renderHeader();
  renderAgents();
  renderGlance();
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

// The reports' agents (docs/report.md) in the feed's shape: hits per
// category as the dashboard counts them (alerts under their strongest rule).
// A report asked for a shop (and queue) says so, and its agents are their
// figures within it, with their hours: the rows take that shop and queue,
// which the shop filter reads (the report's own rows name none).
function pastAgents() {
  const reports = state.past && state.past.reports;
  if (!reports || !reports.length || !reports.every((r) => r && Array.isArray(r.agents))) return null;
  return reports.flatMap((r) => {
    const shop = typeof r.shop === 'string' ? r.shop : '';
    const queue = shop && typeof r.queue === 'string' ? r.queue : '';
    return r.agents.map((a) => Object.assign({}, a, shop ? { shop, queue } : {}, {
      hits: Object.fromEntries(Object.entries(a.hits && typeof a.hits === 'object' ? a.hits : {})
        .map(([c, v]) => [c, v && Number.isFinite(v.alerts) ? v.alerts : 0])),
    }));
  });
}

function renderAgents() {
  dom.colRate.textContent = rateLabel();
  dom.colChart.textContent = t('col.chart', fmtTz(state.tzOffsetMin));
  dom.agentsNote.textContent = t('agents.note', fmtDur(state.sla.reply_ms));
  const all = state.past ? pastAgents() : state.agents && Array.isArray(state.agents.agents) ? state.agents.agents : null;
  const list = all && all.filter((a) => shopPasses(String(a.shop ?? ''), String(a.queue ?? '')));
  dom.agentsBody.replaceChildren();
  dom.agentsEmpty.textContent = state.past && state.past.error ? state.past.error
    : list ? t(state.past ? 'agents.nonePast' : 'agents.none') : t('loading');
  dom.agentsEmpty.hidden = Boolean(list && list.length);
  if (!list) return;

  const thr = state.sla.reply_ms;
  // grouped by shop and queue (the feed sends them in that order) once any row has a shop
  const grouped = list.some((a) => a.shop);
  let groupKey = null;
  for (const a of list) {
    const name = String(a.agent ?? '');
    const shop = String(a.shop ?? ''), queue = String(a.queue ?? '');
    if (grouped && groupKey !== shop + '\u001f' + queue) {
      groupKey = shop + '\u001f' + queue;
      const head = el('tr', 'shop-group');
      Object.assign(head.dataset, { shop, queue });
      const th = el('th', '', shop ? shopLabel(shop) + (queue ? ' · ' + visible(queue) : '') : t('agents.noShop'));
      th.colSpan = 10;
      head.append(th);
      dom.agentsBody.append(head);
    }
    const tr = el('tr', 'agent');
    tr.dataset.agent = name;
    if (shop) Object.assign(tr.dataset, { shop, queue });
    const has = a.rounds > 0;

    const nameCell = el('td', 'name');
    const link = el('button', 'agent-link', visible(name));
    link.type = 'button';
    link.title = t('filterBy', visible(name));
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

/* ---------------------------------------------------- a past day, picked */

// The day shown (a past one, or today) in the picker, the notes and the
// report links; the links are plain GETs (the session cookie goes along),
// fetched with the Bearer token when the page has ?token=.
function renderDayPick() {
  const day = state.past ? state.past.day : state.day;
  if (state.day) dom.dayPick.max = state.day;
  if (document.activeElement !== dom.dayPick) dom.dayPick.value = day || '';
  dom.dayToday.hidden = !state.past;
  document.body.classList.toggle('past', Boolean(state.past));
  dom.app.dataset.day = day || '';
  for (const el2 of [dom.agentsDay, dom.alertsDay]) {
    el2.hidden = !state.past;
    el2.textContent = state.past ? t('past.note', state.past.day) : '';
  }
  const q = day ? `from=${encodeURIComponent(day)}&to=${encodeURIComponent(day)}&` : '';
  dom.reportCsv.href = `/api/report?${q}${reportShop()}format=csv`;
  dom.reportHtml.href = `/api/report?${q}${reportShop()}format=html`;
}

// A login of some shops reads the report of one of its shops at a time,
// never the sums of every shop (docs/dashboard.md): its shops, in the
// filter's order.
function ownShops() {
  return auth.shops && auth.shops.length ? [...auth.shops].sort((x, y) => x.localeCompare(y)) : null;
}

function shopQuery(shop, queue) {
  return `shop=${encodeURIComponent(shop)}&` + (queue ? `queue=${encodeURIComponent(queue)}&` : '');
}

// The shop (and queue) filter as the report's own: one shop's figures; with
// none picked, a login of some shops gets its first shop's (the download
// links are one file).
function reportShop() {
  const shop = state.filter.shop;
  if (shop && shop !== NO_SHOP) return shopQuery(shop, state.filter.queue);
  const own = ownShops();
  return own ? shopQuery(own[0], '') : '';
}

// The reports a past day's agents are read from: the shop picked, or every
// shop's sums; for a login of some shops with none picked, one per shop of it.
function reportQueries() {
  const shop = state.filter.shop;
  const own = ownShops();
  if ((!shop || shop === NO_SHOP) && own) return own.map((id) => shopQuery(id, ''));
  return [reportShop()];
}

const PAST_LIMIT = 1000;     // a past day's alerts asked for (the API's most)

async function pickDay(day) {
  const seq = ++state.pastSeq;
  if (!day || day === state.day) {
    state.past = null;
  } else {
    state.past = { day, reports: null, kept: [], loading: true, error: '', partial: false };
  }
  renderHeader();
  renderAgents();
  scheduleRender();
  if (!state.past) return;
  const d = encodeURIComponent(day);
  const [al, ...reps] = await Promise.all([
    api('GET', `/api/alerts?day=${d}&limit=${PAST_LIMIT}`),
    ...reportQueries().map((q) => api('GET', `/api/report?from=${d}&to=${d}&${q}`)),
  ]);
  if (seq !== state.pastSeq || !state.past) return;    // overtaken, or back to today
  state.past.loading = false;
  const failed = reps.find((rep) => !rep.ok || !rep.doc || typeof rep.doc !== 'object');
  if (failed) state.past.error = failed.error || t('err.other', failed.status);
  else state.past.reports = reps.map((rep) => rep.doc);
  if (al.ok && al.doc && Array.isArray(al.doc.alerts)) {
    // older alerts of that day not read (the API's `partial`), or more
    // than the page asks for: either way not the whole day
    state.past.partial = al.doc.partial === true || al.doc.alerts.length >= PAST_LIMIT;
    const seen = new Set();
    for (const item of al.doc.alerts) {
      const a = item && item.alert;
      if (!a || typeof a !== 'object' || (a.type !== 'rule.hit' && !SLA_TYPES.includes(a.type))) continue;
      const e = entry(item.sid, a);
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      if (e.id && item.handling && typeof item.handling === 'object' && !state.handling.has(e.id)) {
        state.handling.set(e.id, item.handling);
      }
      state.past.kept.push(e);
    }
  } else if (!state.past.error) {
    state.past.error = al.error;
  }
  renderAgents();
  scheduleRender();
}

async function downloadReport(ev) {
  if (!TOKEN) return;         // a cookie or an open dashboard: the link itself
  ev.preventDefault();
  const a = ev.currentTarget;
  let r;
  try {
    r = await fetch(a.href, { headers: { Authorization: `Bearer ${TOKEN}` }, cache: 'no-store' });
  } catch {
    return;
  }
  if (!r.ok) return;
  const url = URL.createObjectURL(await r.blob());
  const m = /filename="([^"]+)"/.exec(r.headers.get('Content-Disposition') || '');
  const save = el('a');
  save.href = url;
  save.download = m ? m[1] : 'chatmon-report';
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// ?conv=ID opens that conversation once the page is in (pushed alerts
// link to PUBLIC_URL?conv=CONV&alert=ID), and &alert=ID stands out;
// ?day=DAY opens that day (the daily summary links to PUBLIC_URL?day=DAY).
let convFromUrl = false;
function openFromUrl() {
  if (convFromUrl) return;
  convFromUrl = true;
  const id = params.get('conv');
  if (id) openConversation(id, '');
  // ?day=YYYY-MM-DD (the daily summary's link) shows that day's figures
  const day = params.get('day');
  if (day && /^\d{4}-\d{2}-\d{2}$/.test(day)) pickDay(day);
}

/* ------------------------------------------------- header, banner, render */

function renderHeader() {
  dom.day.textContent = state.day ? t('day', state.day, fmtTz(state.tzOffsetMin)) : '';
  renderDayPick();
  dom.conn.dataset.state = feed.state;
  dom.connText.textContent = t('conn.' + feed.state);

  // One banner, the worst news first: refused, lost, then Redis away (which
  // only the live feed can tell).
  const b = feed.state === 'denied' || feed.state === 'lost' ? feed.state
    : feed.state === 'live' && !state.redisOk ? 'redis' : '';
  if (b) {
    dom.banner.dataset.state = b;
    // signed in, no token in the address: the token is not the cause
    dom.banner.textContent = t(b === 'denied' && auth.logins && auth.user && !TOKEN ? 'banner.deniedLogin'
      : 'banner.' + b);
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
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  dom.glance.setAttribute('aria-label', t('glance.label'));
  dom.notifyToggle.title = t('notify.title');
  dom.lang.textContent = t('switchTo');
  dom.lang.title = t('switchToLabel');
  dom.lang.setAttribute('aria-label', t('switchToLabel'));
  dom.lang.lang = state.lang === 'zh' ? 'en' : 'zh-CN';
  renderWho();
  if (dom.loginError.dataset.key) dom.loginError.textContent = t(dom.loginError.dataset.key, dom.loginError.dataset.arg);
  // every row carries labels: build them all again
  rowCache = new Map();
  pinCache = new Map();
  dom.alerts.replaceChildren();
  dom.pinned.replaceChildren();
  dom.convAlerts.replaceChildren();
  conv.turnsSig = '';
  renderHeader();
  renderFilterOptions();
  renderAlerts();
  renderWaiting();
  renderAgents();
  renderConv();
  renderTitle();
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
      // a new feed sends its agents whole: drawn, though alike the last one
      state.agentsSig = '';
      if (m.sla && typeof m.sla === 'object') Object.assign(state.sla, m.sla);
      if (Array.isArray(m.shops)) takeShops(m.shops);
      if (m.day) state.day = String(m.day);
      if (Number.isFinite(m.tz_offset_min) && m.tz_offset_min !== state.tzOffsetMin) {
        state.tzOffsetMin = m.tz_offset_min;
        rowCache = new Map();   // the rows' times are in that zone: draw them again
        pinCache = new Map();
        dom.alerts.replaceChildren();
        dom.pinned.replaceChildren();
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
    case 'handling':
      takeHandling(m);
      break;
    case 'note':
      takeNote(m.note);
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
  auth.shops = null;
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
  state.agentsSig = '';     // the next login's first agents is news, however alike
  state.agentsSeen = new Set();
  // a past day too, and a pick still under way (its answer is this
  // login's, of shops the next one may not see); the shops, categories
  // and filters this login's data named
  state.pastSeq++;
  state.past = null;
  state.shops = new Map();
  state.otherCategories = new Set();
  state.filter = { sev: { critical: true, warn: true, info: true }, category: '', agent: '', shop: '', queue: '' };
  for (const s of SEVERITIES) dom.sevBoxes[s].checked = true;
  state.alertsLoaded = false;
  state.handling.clear();
  state.notes.clear();
  state.pending = [];
  closeConversation();
  feed.lastSid = '';
  rowCache = new Map();
  pinCache = new Map();
  dom.alerts.replaceChildren();
  dom.pinned.replaceChildren();
  renderFilterOptions();
  renderAlerts();
  renderWaiting();
  renderAgents();
  renderDayPick();
  dom.app.hidden = true;
  dom.notifyToggle.hidden = true;
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
  dom.notifyToggle.hidden = false;
  dom.conn.hidden = false;
  renderWho();
  applyLanguage();
  openFromUrl();
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
      const role = auth.role;
      auth.user = String(me.user);
      auth.role = String(me.role || '');
      auth.shops = Array.isArray(me.shops) ? me.shops.map(String) : null;
      state.filterOptionsStale = true;
      renderWho();
      if (again && role !== auth.role) {
        // a new role: the buttons come or go
        repaintHandling(null);
        renderConv();
      }
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
      auth.shops = Array.isArray(me.shops) ? me.shops.map(String) : null;
      state.filterOptionsStale = true;
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
dom.shop.addEventListener('change', onFilterChange);
dom.queue.addEventListener('change', onFilterChange);
dom.lang.addEventListener('click', toggleLanguage);
for (const list of [dom.alerts, dom.pinned, dom.waiting]) list.addEventListener('click', onRowClick);
document.addEventListener('click', onHandleClick);
document.addEventListener('submit', (ev) => {
  if (ev.target.closest('.h-form')) onHandleSubmit(ev);
});
document.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Escape') return;
  const box = ev.target.closest && ev.target.closest('.handle');
  if (box && box.querySelector('.h-form')) closeForm(box);
  else if (conv.id) closeConversation();
});
// a remembered sound choice waits for a gesture on the page
document.addEventListener('pointerdown', () => {
  if (state.notify) unlockAudio();
}, { once: true });
dom.convClose.addEventListener('click', closeConversation);
dom.noteForm.addEventListener('submit', sendNote);
dom.noteText.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) dom.noteForm.requestSubmit();
});
dom.notify.addEventListener('change', () => setNotify(dom.notify.checked));
dom.loginForm.addEventListener('submit', submitLogin);
dom.dayPick.addEventListener('change', () => pickDay(dom.dayPick.value));
dom.dayToday.addEventListener('click', () => pickDay(''));
dom.reportCsv.addEventListener('click', downloadReport);
dom.reportHtml.addEventListener('click', downloadReport);
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
state.notify = loadNotify();
dom.notify.checked = state.notify;
applyLanguage();
setInterval(tick, TICK_MS);
checkLogin(false);
