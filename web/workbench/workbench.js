/*
 * chatmon agent workbench (demo): an agent's view of several buyer
 * conversations, connected to the chat backend THROUGH chatmond, which
 * times every round and warns or blocks inline (chatmon.warning frames).
 *
 * Where it connects: <chatmond>?agent=<agent>. chatmond comes from
 * /config.json ({"chatmond","first_response_ms","reply_ms","warn_at",
 * "tz_offset_min"}), overridden by ?ws=URL (or ?chatmond=URL); the agent
 * from ?agent=NAME (default alice).
 *
 * Times are shown in the shop's zone, sla.timezone, as the dashboard and
 * chatmon tail show them (docs/alerts.md, "Times"): tz_offset_min of
 * /config.json; without it, the browser's zone. Either way the header says
 * which (UTC+08:00).
 *
 * Stable hooks for tests (do not rename):
 *   #status                      data-state="connecting|open|closed"; data-binary=N, the
 *                                binary frames received (chatmond sends text: expect 0)
 *   #convs .conv                 data-conversation=ID, data-unread=N, data-ended="true|false";
 *                                .unread (the unread count) shown when N > 0
 *     .countdown                 the SLA countdown: data-state="ok|warn|breach",
 *                                data-open="true|false" (a round is open)
 *   #messages .msg               data-role="customer|agent"; the agent's own also
 *                                data-id="m-N" and data-state="sent|delivered|blocked"
 *   #messages .note              chatmond's notes: data-kind="warn|block|sla"; a rule hit's
 *                                data-rule / data-category (space-separated when one message
 *                                broke several rules: its one alert's hits, one note); an SLA
 *                                one's data-type="sla.warn|sla.breach". Rule ids are for
 *                                tests and supervisors: the agent reads the category's name
 *                                and the coaching text, never an id.
 *   #reply, #send                the reply box (Enter sends, Shift+Enter: new line) and button
 *   #messages .whisper           a supervisor's note (chatmon.note), 主管提示: data-id=the note's
 *                                id, data-from, data-state="new|read" (read once the agent has
 *                                it on screen, or clicks it)
 *
 * Frames it reads: the backend's message/end (and, from tools/demo_backend.py,
 * conversation {buyer,label}, typing, delivered {id}) and chatmond's
 * chatmon.warning {alert, blocked}: one per message however many rules it broke
 * (alert v2: every rule in alert.hits, strongest first), and chatmon.note {id,
 * conversation, from, text, ts}, a supervisor's whisper. It sends {"type":"message",
 * "conversation","text","id":"m-<n>"} and {"type":"end","conversation"}, and answers
 * each note with {"type":"chatmon.note_ack","id","state":"delivered"} on receipt and
 * "read" once seen (chatmond keeps those; the backend never sees either).
 *
 * Plain JS, no build, no dependencies; chat text only ever goes through
 * textContent (never innerHTML), as the CSP expects.
 */
(function () {
  'use strict';

  // the dashboard's names (web/dashboard/dashboard.js, "cat.*"): one name for one thing
  var CATEGORY = {
    offplatform: '站外引流', invoice: '拒开发票', returns: '拒绝七天无理由', stock: '声称无货',
    review_bait: '好评返现', payment: '支付方式违规', order_close: '代关订单', privacy: '泄露隐私',
    etiquette: '服务用语', abuse: '辱骂买家', ad_law: '广告法违禁词', complaint_risk: '投诉风险',
    extortion: '差评勒索'
  };

  function catName(c) { return CATEGORY[c] || '其他违规'; }

  var params = new URLSearchParams(location.search);
  var state = {
    cfg: { chatmond: 'ws://' + (location.hostname || '127.0.0.1') + ':8080/',
           first_response_ms: 15000, reply_ms: 30000, warn_at: 0.8, tz_offset_min: null },
    agent: params.get('agent') || 'alice',
    ws: null,
    retry: 1000,
    convs: new Map(),        // id -> conversation
    order: [],               // ids, in arrival order
    selected: null,
    seq: 0,                  // m-<n> message ids
    alerts: [],              // the right column, newest first
    alertsVer: 0,
    stats: { block: 0, warn: 0, sla: 0, rounds: 0 },
    whispers: new Map()      // note id -> its item: one per id, however often it comes
  };

  var $ = function (id) { return document.getElementById(id); };
  var utf8 = new TextDecoder('utf-8', { fatal: true });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function two(n) { return (n < 10 ? '0' : '') + n; }

  // the zone times are shown in: sla.timezone from /config.json, else the browser's
  function tzOffset(t) {
    var off = state.cfg.tz_offset_min;
    return typeof off === 'number' && isFinite(off) ? off : -new Date(t).getTimezoneOffset();
  }

  function tzLabel() {
    var off = tzOffset(Date.now());
    var a = Math.abs(off);
    return 'UTC' + (off < 0 ? '-' : '+') + two(Math.floor(a / 60)) + ':' + two(a % 60);
  }

  function hhmmss(t) {
    var d = new Date(t + tzOffset(t) * 60000);
    return [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()].map(two).join(':');
  }

  function hhmm(t) { return hhmmss(t).slice(0, 5); }

  function secs(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    s = s % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  function secText(ms) {
    var s = ms / 1000;
    return (s >= 10 || s === Math.round(s) ? Math.round(s) : s.toFixed(1)) + ' 秒';
  }

  function hashColor(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return 'av-' + (h % 8);
  }

  function initial(name) {
    var chars = Array.from(name || '?');
    var han = chars.filter(function (ch) { return /\p{Script=Han}/u.test(ch); });
    if (han.length >= 2) return han.slice(-2).join('');
    for (var i = 0; i < chars.length; i++)
      if (/[\p{L}\p{N}]/u.test(chars[i])) return chars[i].toUpperCase();
    return chars[0] || '?';
  }

  function avatarClass(name) {
    return 'avatar ' + hashColor(name) + (initial(name).length > 1 ? ' duo' : '');
  }

  function labelClass(label) {
    if (/售后/.test(label)) return 'tag after-sale';
    if (/售前/.test(label)) return 'tag pre-sale';
    return 'tag';
  }

  // ------------------------------------------------------------------
  // Conversations and their SLA rounds

  function ensureConv(id) {
    var c = state.convs.get(id);
    if (!c) {
      c = { id: id, buyer: '买家 ' + id, label: '', since: Date.now(), items: [], ver: 0, unread: 0,
            last: '', lastAt: Date.now(), ended: false, typingUntil: 0, rounds: 0,
            round: null, draft: '', flagged: false };
      state.convs.set(id, c);
      state.order.push(id);
      if (state.selected === null) select(id);
    }
    return c;
  }

  // A round opens at the first customer turn after the agent's last reply; the
  // first round of a conversation is judged against first_response_ms.
  function openRound(c, now) {
    if (c.round && !c.round.closedBy) return;
    var first = c.rounds === 0;
    c.rounds++;
    c.round = { opened: now, first: first, closedBy: null,
                threshold: first ? state.cfg.first_response_ms : state.cfg.reply_ms };
  }

  function roundState(c, now) {
    var r = c.round;
    if (!r || r.closedBy) return { open: false, state: 'ok' };
    var waited = now - r.opened;
    var st = waited >= r.threshold ? 'breach'
      : waited >= r.threshold * state.cfg.warn_at ? 'warn' : 'ok';
    return { open: true, state: st, waited: waited, left: r.threshold - waited, round: r };
  }

  // seconds left, then seconds over, both rounded up: "1s" is the last second
  // before the breach, "超时 1s" the first one after it
  function leftText(rs) { return secs(rs.left + 999); }
  function overText(rs) { return secs(Math.max(1000, 999 - rs.left)); }

  function countdownText(c, rs) {
    if (rs.open) return rs.state === 'breach' ? '超时 ' + overText(rs) : leftText(rs);
    if (c.ended) return '已结束';
    if (c.round) return '已回复';
    return '';
  }

  function findMsg(c, pred) {
    for (var i = c.items.length - 1; i >= 0; i--) {
      var it = c.items[i];
      if (it.kind === 'msg' && pred(it)) return it;
    }
    return null;
  }

  function addItem(c, item, after) {
    c.ver++;
    if (after) {
      var i = c.items.indexOf(after);
      if (i >= 0) {
        i++;
        while (i < c.items.length && c.items[i].kind === 'note' && c.items[i].ref === after) i++;
        c.items.splice(i, 0, item);
        return;
      }
    }
    c.items.push(item);
  }

  // ------------------------------------------------------------------
  // Frames from chatmond (the backend's, relayed, and chatmond's own)

  function onFrame(data) {
    var f;
    try { f = JSON.parse(data); } catch (e) { return; }
    if (!f || typeof f !== 'object' || f.conversation === undefined || f.conversation === null) return;
    var id = String(f.conversation);
    var now = Date.now();
    var c;
    if (typeof f.conversation === 'number' && !state.convs.has(id)) rawIds[id] = f.conversation;
    switch (f.type) {
      case 'conversation':
        c = ensureConv(id);
        if (typeof f.buyer === 'string' && f.buyer) c.buyer = f.buyer;
        if (typeof f.label === 'string') c.label = f.label;
        addItem(c, { kind: 'sys', text: '买家 ' + c.buyer + ' 进入会话' + (c.label ? ' · ' + c.label : ''), at: now });
        break;
      case 'message':
        c = ensureConv(id);
        if (typeof f.text !== 'string') return;
        addItem(c, { kind: 'msg', role: 'customer', text: f.text, at: now });
        c.last = f.text;
        c.lastAt = now;
        c.typingUntil = 0;
        openRound(c, now);
        if (state.selected !== id || document.hidden) c.unread++;
        break;
      case 'typing':
        c = ensureConv(id);
        c.typingUntil = now + 6000;
        break;
      case 'delivered':
        c = state.convs.get(id);
        if (!c) return;
        var m = findMsg(c, function (x) { return x.role === 'agent' && x.id === f.id; });
        if (m && m.state === 'sent') { m.state = 'delivered'; c.ver++; }
        break;
      case 'end':
        c = state.convs.get(id);
        if (!c || c.ended) return;
        endConv(c, '买家已离开,会话结束', now);
        break;
      case 'chatmon.warning':
        onWarning(id, f, now);
        break;
      case 'chatmon.note':
        onWhisper(id, f, now);
        break;
      default:
        return;
    }
    render();
  }

  function endConv(c, why, now) {
    c.ended = true;
    c.typingUntil = 0;
    if (c.round && !c.round.closedBy) c.round.closedBy = 'end';
    addItem(c, { kind: 'sys', text: why, at: now });
  }

  function onWarning(id, f, now) {
    var a = f.alert && typeof f.alert === 'object' ? f.alert : {};
    var c = ensureConv(id);
    var type = typeof a.type === 'string' ? a.type : 'rule.hit';
    var note;
    if (type.indexOf('sla.') === 0) {
      var r = c.round;
      if (r && !r.closedBy && typeof a.waited_ms === 'number') {
        // chatmond's clock is the reference: never show less than it waited
        var opened = now - a.waited_ms;
        if (opened < r.opened) r.opened = opened;
      }
      note = { kind: 'note', noteKind: 'sla', alerts: [a], at: now };
      addItem(c, note, null);
      // the right column lists breaches; a warning is for this conversation only
      if (type !== 'sla.warn') {
        state.stats.sla++;
        pushAlert(c, 'sla', '响应超时', '买家已等待 ' + secText(a.waited_ms || 0) +
                  (a.first ? ' (首次响应)' : ''), now);
      }
      return;
    }
    // v2: one alert for the message, every rule in hits; v1 (one alert a rule): itself
    var hits = Array.isArray(a.hits) && a.hits.length ? a.hits.filter(function (h) {
      return h && typeof h === 'object';
    }) : [a];
    var customer = a.role === 'customer';
    var blocked = f.blocked === true && !customer;
    var kind = blocked ? 'block' : 'warn';
    var ref;
    if (customer) {
      ref = findMsg(c, function (x) { return x.role === 'customer' && sameText(x, a); });
    } else if (blocked) {
      // the latest unacknowledged message of ours with that text (or the one
      // an earlier hit of the same message marked)
      ref = findMsg(c, function (x) { return x.role === 'agent' && x.state === 'sent' && sameText(x, a); }) ||
            findMsg(c, function (x) { return x.role === 'agent' && x.state === 'blocked' && sameText(x, a); });
      if (ref && ref.state !== 'blocked') {
        ref.state = 'blocked';
        // a blocked reply answers nothing: the buyer is still waiting
        if (c.round && c.round.closedBy === ref.id) {
          c.round.closedBy = null;
          state.stats.rounds--;
        }
      }
    } else {
      ref = findMsg(c, function (x) { return x.role === 'agent' && sameText(x, a); });
    }
    // one message, one note (a v1 relay sends a warning a rule: they join it)
    var same = ref && c.items.filter(function (x) {
      return x.kind === 'note' && x.ref === ref && x.noteKind === kind;
    })[0];
    if (same) {
      same.alerts = same.alerts.concat(hits);
      c.ver++;
      return;
    }
    note = { kind: 'note', noteKind: kind, alerts: hits, ref: ref, customer: customer, at: now };
    addItem(c, note, ref);
    if (blocked) state.stats.block++;
    else state.stats.warn++;
    c.flagged = true;
    var cat = uniq(hits.map(function (h) { return catName(h.category); })).join('、');
    pushAlert(c, kind, blocked ? '拦截 · ' + cat : (customer ? '买家 · ' : '提醒 · ') + cat, a.text || '', now);
  }

  // the message an alert is about: its text, or the last line of the turns a
  // match across messages joined (v2 text: the earlier turns, then this one)
  function sameText(x, a) {
    var t = typeof a.text === 'string' ? a.text : '';
    return x.text === t || (a.turns > 1 && t.slice(-x.text.length - 1) === '\n' + x.text);
  }

  function pushAlert(c, kind, title, text, now) {
    state.alertsVer++;
    state.alerts.unshift({ conv: c.id, kind: kind, title: title, text: text, at: now });
    if (state.alerts.length > 40) state.alerts.length = 40;
  }

  // ------------------------------------------------------------------
  // Sending

  // a backend that numbers its conversations gets its numbers back
  var rawIds = {};

  function rawId(c) {
    return Object.prototype.hasOwnProperty.call(rawIds, c.id) ? rawIds[c.id] : c.id;
  }

  function send() {
    var box = $('reply');
    var c = state.convs.get(state.selected);
    var text = box.value.replace(/^\s+|\s+$/g, '');
    if (!c || !text || c.ended || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    var id = 'm-' + (++state.seq);
    state.ws.send(JSON.stringify({ type: 'message', conversation: rawId(c), text: text, id: id }));
    var now = Date.now();
    addItem(c, { kind: 'msg', role: 'agent', text: text, id: id, state: 'sent', at: now });
    c.last = '我: ' + text;
    c.lastAt = now;
    if (c.round && !c.round.closedBy) {
      c.round.closedBy = id;
      state.stats.rounds++;
    }
    box.value = '';
    c.draft = '';
    render(true);
  }

  function endSelected() {
    var c = state.convs.get(state.selected);
    if (!c || c.ended || !state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    state.ws.send(JSON.stringify({ type: 'end', conversation: rawId(c) }));
    endConv(c, '你结束了会话', Date.now());
    render(true);
  }

  function select(id) {
    var box = $('reply');
    var old = state.convs.get(state.selected);
    if (old) old.draft = box.value;
    state.selected = id;
    var c = state.convs.get(id);
    if (c) {
      c.unread = 0;
      c.flagged = false;
      box.value = c.draft || '';
    }
    render(true);
    if (!box.disabled) box.focus();
  }

  // ------------------------------------------------------------------
  // Rendering (DOM built with textContent only)

  function sortedIds() {
    var live = [], done = [];
    state.order.forEach(function (id) { (state.convs.get(id).ended ? done : live).push(id); });
    // keep the list short in a long demo: the last 8 ended conversations
    var drop = done.length > 8 ? done.slice(0, done.length - 8) : [];
    drop.forEach(function (id) {
      if (id === state.selected) return;
      state.convs.delete(id);
      state.order.splice(state.order.indexOf(id), 1);
    });
    done = done.filter(function (id) { return state.convs.has(id); });
    return live.concat(done);
  }

  // One <li> per conversation, kept and updated in place: a list rebuilt on
  // every frame would lose clicks (mousedown and mouseup on different nodes).
  var convEls = new Map();

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setData(node, key, value) {
    if (node.dataset[key] !== value) node.dataset[key] = value;
  }

  function convEl(id) {
    var e = convEls.get(id);
    if (e) return e;
    e = { li: el('li', 'conv'), avatar: el('span', 'avatar'), name: el('div', 'conv-name'),
          who: el('b'), tag: el('span', 'tag'), dot: el('span', 'flag-dot'),
          time: el('span', 'conv-time'), last: el('div', 'conv-last'), cd: el('span', 'countdown'),
          unread: el('span', 'unread') };
    e.li.dataset.conversation = id;
    e.name.append(e.who, e.tag, e.dot);
    e.li.append(e.avatar, e.name, e.time, e.last, e.cd, e.unread);
    convEls.set(id, e);
    return e;
  }

  function updateConv(e, c, now) {
    var rs = roundState(c, now);
    e.li.classList.toggle('selected', c.id === state.selected);
    setData(e.li, 'unread', String(c.unread));
    setData(e.li, 'ended', String(c.ended));
    e.avatar.className = avatarClass(c.buyer);
    setText(e.avatar, initial(c.buyer));
    setText(e.who, c.buyer);
    e.tag.className = labelClass(c.label);
    e.tag.hidden = !c.label;
    setText(e.tag, c.label.replace(/^.*·\s*/, ''));
    e.dot.hidden = !(c.flagged && c.id !== state.selected);
    setText(e.time, c.items.length ? hhmm(c.lastAt) : '');
    var typing = c.typingUntil > now && !c.ended;
    setText(e.last, typing ? '对方正在输入…' : (c.last || c.label || '新会话'));
    e.last.classList.toggle('is-typing', typing);
    setText(e.cd, countdownText(c, rs));
    setData(e.cd, 'state', rs.state);
    setData(e.cd, 'open', String(rs.open));
    e.unread.hidden = c.unread === 0;
    setText(e.unread, c.unread > 99 ? '99+' : String(c.unread));
    e.li.title = c.buyer + (c.label ? ' · ' + c.label : '') + ' (' + c.id + ')';
    return rs;
  }

  function renderConvs(now) {
    var list = $('convs');
    var ids = sortedIds();
    convEls.forEach(function (e, id) {
      if (!state.convs.has(id)) { e.li.remove(); convEls.delete(id); }
    });
    var waiting = 0, live = 0;
    ids.forEach(function (id, i) {
      var c = state.convs.get(id);
      var e = convEl(id);
      if (updateConv(e, c, now).open) waiting++;
      if (!c.ended) live++;
      if (list.children[i] !== e.li) list.insertBefore(e.li, list.children[i] || null);
    });
    $('convs-empty').hidden = ids.length > 0;
    $('conv-counts').textContent = live + ' 个接待中' + (waiting ? ' · ' + waiting + ' 个待回复' : '');
    var unread = 0;
    state.convs.forEach(function (c) { unread += c.unread; });
    var title = (unread ? '(' + unread + ') ' : '') + '客服工作台 · chatmon 演示';
    if (document.title !== title) document.title = title;
  }

  function uniq(list) {
    return list.filter(function (x, i) { return x && list.indexOf(x) === i; });
  }

  function noteNode(n) {
    var a = n.alerts[0];
    var box = el('div', 'note');
    box.dataset.kind = n.noteKind;
    var title = el('div', 'note-title');
    if (n.noteKind === 'sla') {
      var breach = a.type !== 'sla.warn';
      box.dataset.type = a.type || '';
      box.dataset.level = breach ? 'breach' : 'warn';
      box.classList.add('standalone');
      title.appendChild(el('span', 'badge sla', '时效'));
      title.appendChild(el('span', null, breach ? '响应超时' : '即将超时'));
      box.appendChild(title);
      var what = a.first ? '首次响应' : '回复';
      box.appendChild(el('div', 'note-body',
        '买家已等待 ' + secText(a.waited_ms || 0) + ',' + what + '标准 ' + secText(a.threshold_ms || 0) + '。' +
        (breach ? '已通知主管,请立即回复买家。' : '请尽快回复,先回一句"亲,在的"也好。')));
      return box;
    }
    var rules = uniq(n.alerts.map(function (x) { return x.rule; }));
    var cats = uniq(n.alerts.map(function (x) { return x.category; }));
    box.dataset.rule = rules.join(' ');
    box.dataset.category = cats.join(' ');
    box.classList.add(n.ref ? (n.customer ? 'for-customer' : 'for-agent') : 'standalone');
    var head = n.noteKind === 'block' ? '已拦截,消息未发送给买家' :
      n.customer ? '买家消息提醒' : '质检提醒';
    // the agent reads what was wrong and what to do: names, never rule ids
    var catText = uniq(cats.map(catName)).join('、');
    title.appendChild(el('span', 'badge ' + n.noteKind, n.noteKind === 'block' ? '拦截' : '提醒'));
    title.appendChild(el('span', null, head + (catText ? ' · ' + catText : '')));
    box.appendChild(title);
    // every rule's coaching text, strongest first, each once
    uniq(n.alerts.map(function (x) { return typeof x.message === 'string' ? x.message : ''; }))
      .forEach(function (msg) { box.appendChild(el('div', 'note-body', msg)); });
    var matched = uniq(n.alerts.map(function (x) { return typeof x.matched === 'string' ? x.matched : ''; }));
    if (matched.length) {
      var m = el('div', 'note-match', '命中: ');
      matched.forEach(function (x, i) {
        if (i) m.appendChild(document.createTextNode(' '));
        m.appendChild(el('mark', null, x));
      });
      box.appendChild(m);
    }
    return box;
  }

  // ------------------------------------------------------------------
  // Supervisors' whisper notes (chatmon.note): shown in the conversation they
  // name, never as a chat message; acknowledged to chatmond, which tells the
  // supervisor's dashboard (delivered on receipt, read once seen)

  function sendNoteAck(id, st) {
    var ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ type: 'chatmon.note_ack', id: id, state: st }));
    return true;
  }

  function onWhisper(convId, f, now) {
    if (typeof f.id !== 'string' || !f.id || typeof f.text !== 'string') return;
    // chatmond delivers at least once (again after a reconnect): ack every time,
    // show once
    sendNoteAck(f.id, 'delivered');
    if (state.whispers.has(f.id)) return;
    var c = ensureConv(convId);
    var it = { kind: 'whisper', id: f.id, from: typeof f.from === 'string' ? f.from : '',
               text: f.text, at: typeof f.ts === 'number' ? f.ts : now, read: false, readSent: false };
    state.whispers.set(f.id, it);
    addItem(c, it);
    if (state.selected !== convId || document.hidden) c.unread++;
  }

  function markWhisperRead(it) {
    if (!it.read) {
      it.read = true;
      var c = state.convs.get(state.selected);
      if (c) c.ver++;
    }
    if (!it.readSent) it.readSent = sendNoteAck(it.id, 'read');
  }

  // Read: on screen in the selected conversation while the page is visible
  // (and a read not yet told to chatmond is told once it is connected again).
  function readWhispers() {
    state.whispers.forEach(function (it) {
      if (it.read && !it.readSent) it.readSent = sendNoteAck(it.id, 'read');
    });
    if (document.hidden) return;
    var c = state.convs.get(state.selected);
    if (!c) return;
    var changed = false;
    c.items.forEach(function (it) {
      if (it.kind === 'whisper' && !it.read) { markWhisperRead(it); changed = true; }
    });
    if (changed) renderMessages();
  }

  function whisperNode(it) {
    var box = el('div', 'whisper');
    box.dataset.id = it.id;
    box.dataset.from = it.from;
    box.dataset.state = it.read ? 'read' : 'new';
    var title = el('div', 'whisper-title');
    title.appendChild(el('span', 'badge whisper-badge', '主管提示'));
    title.appendChild(el('span', null, (it.from ? it.from + ' · ' : '') + hhmmss(it.at) + ' · 仅你可见'));
    box.appendChild(title);
    box.appendChild(el('div', 'whisper-body', it.text));
    box.addEventListener('click', function () { markWhisperRead(it); render(); });
    return box;
  }

  var shown = { id: undefined, ver: -1, open: null };

  function renderMessages(forceBottom) {
    var pane = $('messages');
    var c = state.convs.get(state.selected);
    var open = !!state.ws && state.ws.readyState === WebSocket.OPEN;
    var key = { id: state.selected, ver: c ? c.ver : -1, open: open };
    if (!forceBottom && key.id === shown.id && key.ver === shown.ver && key.open === shown.open) return;
    shown = key;
    var nearBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
    pane.replaceChildren();
    if (!c) {
      var ph = el('div', 'placeholder');
      ph.appendChild(el('div', 'placeholder-title', '暂无会话'));
      ph.appendChild(el('div', null, state.ws && state.ws.readyState === WebSocket.OPEN
        ? '买家进线后会出现在左侧列表' : '正在连接 chatmond…'));
      pane.appendChild(ph);
      return;
    }
    c.items.forEach(function (it) {
      if (it.kind === 'sys') {
        var s = el('div', 'sys');
        s.appendChild(el('span', null, hhmm(it.at) + '  ' + it.text));
        pane.appendChild(s);
      } else if (it.kind === 'note') {
        pane.appendChild(noteNode(it));
      } else if (it.kind === 'whisper') {
        pane.appendChild(whisperNode(it));
      } else {
        var agent = it.role === 'agent';
        var row = el('div', 'row ' + it.role);
        row.appendChild(el('span', agent ? 'avatar' : avatarClass(c.buyer),
          agent ? initial(state.agent) : initial(c.buyer)));
        var wrap = el('div', 'bubble-wrap');
        wrap.appendChild(el('div', 'meta', (agent ? state.agent : c.buyer) + '  ' + hhmmss(it.at)));
        var msg = el('div', 'msg', it.text);
        msg.dataset.role = it.role;
        if (agent) {
          msg.dataset.id = it.id;
          msg.dataset.state = it.state;
        }
        wrap.appendChild(msg);
        if (agent) {
          var rc = el('div', 'receipt', it.state === 'blocked' ? '未发送'
            : it.state === 'delivered' ? '✓ 已送达' : '发送中…');
          rc.dataset.state = it.state;
          wrap.appendChild(rc);
        }
        row.appendChild(wrap);
        pane.appendChild(row);
      }
    });
    if (forceBottom || nearBottom) pane.scrollTop = pane.scrollHeight;
  }

  function renderHeader(now) {
    var c = state.convs.get(state.selected);
    var open = state.ws && state.ws.readyState === WebSocket.OPEN;
    $('chat-name').textContent = c ? c.buyer : '未选择会话';
    $('chat-label').textContent = c ? c.label : '';
    $('chat-label').className = c && c.label ? labelClass(c.label) : 'tag';
    $('chat-label').hidden = !(c && c.label);
    $('chat-avatar').textContent = c ? initial(c.buyer) : '?';
    $('chat-avatar').className = c ? avatarClass(c.buyer) : 'avatar av-7';
    $('chat-sub').textContent = c ? '会话 ' + c.id + ' · ' + hhmm(c.since) + ' 接入' + (c.ended ? ' · 已结束' : '')
      : '从左侧选择一个会话开始接待';
    $('end-conv').disabled = !c || c.ended || !open;
    var box = $('reply');
    var can = !!c && !c.ended && open;
    box.disabled = !can;
    box.placeholder = !open ? '未连接 chatmond' : !c ? '请选择会话' : c.ended ? '会话已结束'
      : '输入回复,Enter 发送,Shift+Enter 换行';
    $('send').disabled = !can;
    $('info-buyer').textContent = c ? c.buyer : '—';
    $('info-label').textContent = c && c.label ? c.label : '—';
    $('info-conv').textContent = c ? c.id : '—';
    $('info-since').textContent = c ? hhmmss(c.since) : '—';
    var typing = !!c && c.typingUntil > now && !c.ended;
    $('typing').hidden = !typing;
    if (typing) $('typing-text').textContent = c.buyer + ' 正在输入…';
  }

  function tickTimers(now) {
    // the countdowns, every tick, without rebuilding the list
    document.querySelectorAll('#convs .conv').forEach(function (li) {
      var c = state.convs.get(li.dataset.conversation);
      if (!c) return;
      var rs = roundState(c, now);
      var cd = li.querySelector('.countdown');
      var t = countdownText(c, rs);
      if (cd.textContent !== t) cd.textContent = t;
      if (cd.dataset.state !== rs.state) cd.dataset.state = rs.state;
      if (cd.dataset.open !== String(rs.open)) cd.dataset.open = String(rs.open);
      var typing = c.typingUntil > now && !c.ended;
      var last = li.querySelector('.conv-last');
      var lt = typing ? '对方正在输入…' : (c.last || (c.label || '新会话'));
      if (last.textContent !== lt) {
        last.textContent = lt;
        last.classList.toggle('is-typing', typing);
      }
    });
    var c = state.convs.get(state.selected);
    var timer = $('chat-timer');
    var wait = $('info-wait');
    if (c) {
      var rs = roundState(c, now);
      var what = rs.open && rs.round.first ? '首次响应' : '回复';
      timer.textContent = rs.open ? (rs.state === 'breach' ? what + '已超时 ' + overText(rs)
        : what + '剩余 ' + leftText(rs)) : countdownText(c, rs);
      timer.dataset.state = rs.open ? rs.state : 'idle';
      wait.textContent = rs.open ? secs(rs.waited) + ' / ' + secs(rs.round.threshold) : '—';
      wait.dataset.state = rs.open ? rs.state : 'ok';
    } else {
      timer.textContent = '';
      timer.dataset.state = 'idle';
      wait.textContent = '—';
    }
    var typingNow = !!c && c.typingUntil > now && !c.ended;
    if ($('typing').hidden === typingNow) {
      $('typing').hidden = !typingNow;
      if (typingNow) $('typing-text').textContent = c.buyer + ' 正在输入…';
    }
  }

  var alertsShown = -1;

  function renderAlerts() {
    if (alertsShown === state.alertsVer) return;
    alertsShown = state.alertsVer;
    var list = $('alert-list');
    list.replaceChildren();
    state.alerts.forEach(function (a) {
      var c = state.convs.get(a.conv);
      var li = el('li', 'alert-item');
      li.dataset.kind = a.kind;
      li.dataset.conversation = a.conv;
      var top = el('div', 'alert-top');
      var b = el('b');
      b.appendChild(el('span', 'badge ' + a.kind, a.kind === 'block' ? '拦截' : a.kind === 'sla' ? '时效' : '提醒'));
      b.appendChild(document.createTextNode(c ? c.buyer : a.conv));
      top.appendChild(b);
      top.appendChild(el('time', null, hhmmss(a.at)));
      li.appendChild(top);
      li.appendChild(el('div', 'alert-text', a.title + (a.text ? ':' + a.text : '')));
      list.appendChild(li);
    });
    $('alerts-empty').hidden = state.alerts.length > 0;
    list.hidden = state.alerts.length === 0;
    $('alerts-count').textContent = state.alerts.length ? state.alerts.length + ' 条' : '';
  }

  function renderStats() {
    setText($('stat-block'), String(state.stats.block));
    setText($('stat-warn'), String(state.stats.warn));
    setText($('stat-sla'), String(state.stats.sla));
    setText($('stat-rounds'), String(state.stats.rounds));
  }

  function render(forceBottom) {
    var now = Date.now();
    renderConvs(now);
    renderMessages(forceBottom);
    readWhispers();
    renderHeader(now);
    renderAlerts();
    renderStats();
    tickTimers(now);
  }

  // ------------------------------------------------------------------
  // The connection

  function setStatus(st, text) {
    var s = $('status');
    s.dataset.state = st;
    s.textContent = text;
    var on = $('agent-online');
    on.textContent = st === 'open' ? '在线' : '离线';
    on.dataset.state = st;
  }

  function wsURL() {
    var base = params.get('ws') || params.get('chatmond') || state.cfg.chatmond;
    var u = new URL(base, location.href);
    u.searchParams.set('agent', state.agent);
    return u.toString();
  }

  function connect() {
    var url;
    try {
      url = wsURL();
    } catch (e) {
      setStatus('closed', 'chatmond 地址无效');
      return;
    }
    setStatus('connecting', '连接中…');
    var ws = new WebSocket(url);
    state.ws = ws;
    ws.onopen = function () {
      state.retry = 1000;
      setStatus('open', '已连接 chatmond');
      $('status').title = url;
      render();
    };
    ws.binaryType = 'arraybuffer';
    ws.onmessage = function (ev) {
      if (typeof ev.data === 'string') { onFrame(ev.data); return; }
      // Chat frames are text. A binary one holding UTF-8 JSON is still read
      // (another backend might send them; chatmond before c5d4d33 sent some of
      // its own that way), but counted and logged: it is not what we expect.
      var n = Number($('status').dataset.binary || 0) + 1;
      $('status').dataset.binary = String(n);
      if (n === 1) console.warn('workbench: a binary frame; chat frames should be text');
      try { onFrame(utf8.decode(ev.data)); } catch (e) { /* not UTF-8: not for us */ }
    };
    ws.onclose = function () {
      if (state.ws !== ws) return;
      state.ws = null;
      var now = Date.now();
      state.convs.forEach(function (c) { if (!c.ended) endConv(c, '连接已断开,会话结束', now); });
      var wait = state.retry;
      state.retry = Math.min(state.retry * 2, 15000);
      setStatus('closed', '已断开,' + Math.round(wait / 1000) + ' 秒后重连');
      render();
      setTimeout(connect, wait);
    };
  }

  function loadConfig() {
    return fetch('/config.json', { cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .catch(function () { return {}; })
      .then(function (cfg) {
        ['chatmond', 'first_response_ms', 'reply_ms', 'warn_at', 'tz_offset_min'].forEach(function (k) {
          if (cfg && cfg[k] !== undefined && cfg[k] !== null) state.cfg[k] = cfg[k];
        });
        $('sla-info').textContent = '首次响应 ' + secText(state.cfg.first_response_ms) +
          ' · 回复 ' + secText(state.cfg.reply_ms) + ' · ' + Math.round(state.cfg.warn_at * 100) + '% 时提醒' +
          ' · 时间 ' + tzLabel();
        $('sla-info').dataset.tz = tzLabel();
      });
  }

  // ------------------------------------------------------------------

  function init() {
    $('agent-name').textContent = state.agent;
    $('agent-avatar').textContent = initial(state.agent);
    $('convs').addEventListener('click', function (ev) {
      var li = ev.target.closest('.conv');
      if (li) select(li.dataset.conversation);
    });
    $('alert-list').addEventListener('click', function (ev) {
      var li = ev.target.closest('.alert-item');
      if (li && state.convs.has(li.dataset.conversation)) select(li.dataset.conversation);
    });
    $('quick').addEventListener('click', function (ev) {
      var b = ev.target.closest('.chip');
      var box = $('reply');
      if (!b || box.disabled) return;
      box.value = b.dataset.text;
      box.focus();
    });
    $('reply').addEventListener('keydown', function (ev) {
      // Enter sends; not while an input method is composing (pinyin)
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        send();
      }
    });
    $('send').addEventListener('click', send);
    $('end-conv').addEventListener('click', endSelected);
    document.addEventListener('visibilitychange', function () {
      var c = state.convs.get(state.selected);
      if (!document.hidden && c && c.unread) { c.unread = 0; render(); }
    });
    render();
    setInterval(function () { tickTimers(Date.now()); }, 250);
    loadConfig().then(connect);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
}());
