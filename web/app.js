// Parley's reference chat page: the WebSocket protocol of ARCHITECTURE §4
// (/v1/ws) in plain JavaScript. Everything the server or the user sends is
// shown with textContent, never parsed as HTML.

const PING_INTERVAL_MS = 25_000;
const LANGUAGES = ['es', 'en'];

// The page's own strings. {name} is replaced by the argument of that name.
const STRINGS = {
  es: {
    language: 'Idioma',
    login_title: 'Iniciar sesión',
    token_label: 'Token de acceso (JWT)',
    token_help: 'Pega un token emitido para ti (por ejemplo con «parley token --user ID»).',
    connect: 'Conectar',
    dev_token: 'Usar token de desarrollo',
    dev_token_failed: 'No se pudo obtener el token de desarrollo ({detail}).',
    chat_title: 'Conversación',
    message_label: 'Mensaje',
    message_placeholder: 'Escribe tu mensaje…',
    message_help: 'Intro envía; Mayús+Intro añade una línea.',
    send: 'Enviar',
    cancel: 'Cancelar',
    disconnect: 'Desconectar',
    reconnect: 'Reconectar',
    change_token: 'Cambiar token',
    state_disconnected: 'Desconectado',
    state_connecting: 'Conectando…',
    state_authenticating: 'Autenticando…',
    state_connected: 'Conectado',
    state_connected_as: 'Conectado como {user}',
    state_closed: 'Conexión cerrada',
    closed_detail: 'Conexión cerrada (código {code}).',
    closed_detail_reason: 'Conexión cerrada (código {code}: {reason}).',
    connection_failed: 'No se pudo conectar con el servidor.',
    you: 'Tú',
    assistant: 'Parley',
    thinking: 'Pensando…',
    tool_started: 'Herramienta {name}: iniciada',
    tool_done: 'Herramienta {name}: terminada',
    tool_failed: 'Herramienta {name}: falló',
    meta_cost: 'coste {cost} USD',
    fallback: 'respuesta de respaldo',
    error_code: 'código {code}',
    error_retry: 'código {code}, reintentar en {seconds} s',
    interrupted: 'Interrumpida: se cerró la conexión.',
  },
  en: {
    language: 'Language',
    login_title: 'Sign in',
    token_label: 'Access token (JWT)',
    token_help: 'Paste a token issued to you (for example with “parley token --user ID”).',
    connect: 'Connect',
    dev_token: 'Use dev token',
    dev_token_failed: 'Could not get the dev token ({detail}).',
    chat_title: 'Conversation',
    message_label: 'Message',
    message_placeholder: 'Type your message…',
    message_help: 'Enter sends; Shift+Enter adds a line.',
    send: 'Send',
    cancel: 'Cancel',
    disconnect: 'Disconnect',
    reconnect: 'Reconnect',
    change_token: 'Change token',
    state_disconnected: 'Disconnected',
    state_connecting: 'Connecting…',
    state_authenticating: 'Signing in…',
    state_connected: 'Connected',
    state_connected_as: 'Connected as {user}',
    state_closed: 'Connection closed',
    closed_detail: 'Connection closed (code {code}).',
    closed_detail_reason: 'Connection closed (code {code}: {reason}).',
    connection_failed: 'Could not connect to the server.',
    you: 'You',
    assistant: 'Parley',
    thinking: 'Thinking…',
    tool_started: 'Tool {name}: started',
    tool_done: 'Tool {name}: done',
    tool_failed: 'Tool {name}: failed',
    meta_cost: 'cost {cost} USD',
    fallback: 'fallback answer',
    error_code: 'code {code}',
    error_retry: 'code {code}, retry in {seconds} s',
    interrupted: 'Interrupted: the connection closed.',
  },
};

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('state'),
  stateText: $('state-text'),
  language: $('language'),
  notice: $('notice'),
  login: $('login'),
  loginForm: $('login-form'),
  token: $('token'),
  devToken: $('dev-token'),
  chat: $('chat'),
  log: $('log'),
  closed: $('closed'),
  closedText: $('closed-text'),
  reconnect: $('reconnect'),
  changeToken: $('change-token'),
  composer: $('composer'),
  message: $('message'),
  send: $('send'),
  cancel: $('cancel'),
  disconnect: $('disconnect'),
  turnTemplate: $('turn-template'),
};

const state = {
  language: initialLanguage(),
  token: '',
  user: '',
  ws: null,
  ready: false,
  conversationId: '',
  closed: false,    // a connection was closed: the reconnect panel shows
  pingTimer: 0,
  current: null,    // the turn in flight: {id, el, ...}
  turns: new Map(), // id -> turn, for frames that arrive late
  seq: 0,
};

// ---- language ------------------------------------------------------------

function initialLanguage() {
  try {
    const saved = localStorage.getItem('parley.language');
    if (LANGUAGES.includes(saved)) return saved;
  } catch { /* storage may be disabled */ }
  for (const l of navigator.languages ?? [navigator.language]) {
    const base = String(l || '').toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return 'es';
}

function t(key, args = {}) {
  const text = STRINGS[state.language][key] ?? STRINGS.es[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in args ? String(args[name]) : m));
}

// Sets an element's text from a string key (and arguments), remembered on
// the element so a language switch can translate it again.
function setText(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
}

function translate(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const args = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined;
    el.textContent = t(el.dataset.i18n, args);
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}

function setLanguage(language, { tellServer }) {
  if (!LANGUAGES.includes(language)) return;
  state.language = language;
  document.documentElement.lang = language;
  ui.language.value = language;
  try { localStorage.setItem('parley.language', language); } catch { /* ignore */ }
  translate();
  if (tellServer && state.ready) send({ type: 'language', language });
}

// ---- connection state ----------------------------------------------------

function showState(name, key, args) {
  ui.state.dataset.state = name;
  setText(ui.stateText, key, args);
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

function showNoticeKey(key, args) {
  setText(ui.notice, key, args);
  ui.notice.hidden = false;
}

function clearNotice() {
  delete ui.notice.dataset.i18n;
  delete ui.notice.dataset.i18nArgs;
  showNotice('');
}

function updateControls() {
  const running = state.current !== null;
  ui.send.disabled = !state.ready || running;
  ui.message.disabled = !state.ready;
  ui.cancel.disabled = !state.ready || !running || state.current.cancelling;
  ui.disconnect.hidden = !state.ws;
  ui.closed.hidden = !state.closed;
}

function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/v1/ws`;
}

// The JWT's subject, only to show who is signed in (the server checks it).
function tokenSubject(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    const sub = JSON.parse(new TextDecoder().decode(bytes)).sub;
    return typeof sub === 'string' ? sub : '';
  } catch {
    return '';
  }
}

function connect(token, { resume }) {
  closeSocket(1000, 'reconnecting');
  const turn = state.current;
  if (turn) endTurn(turn, 'interrupted', () => showTurnError(turn, t('interrupted'), ''));
  if (token !== state.token || !resume) state.conversationId = '';
  state.token = token;
  state.user = tokenSubject(token);
  state.ready = false;
  state.closed = false;
  clearNotice();
  showState('connecting', 'state_connecting');

  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    showState('closed', 'state_closed');
    showNoticeKey('connection_failed');
    showLogin();
    return;
  }
  state.ws = ws;
  ui.login.hidden = true;
  ui.chat.hidden = false;
  updateControls();

  ws.addEventListener('open', () => {
    if (ws !== state.ws) return;
    showState('authenticating', 'state_authenticating');
    const hello = { type: 'hello', token: state.token, language: state.language };
    if (state.conversationId) hello.conversation_id = state.conversationId;
    ws.send(JSON.stringify(hello));
  });
  ws.addEventListener('message', (ev) => {
    if (ws !== state.ws || typeof ev.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (frame && typeof frame === 'object') onFrame(frame);
  });
  ws.addEventListener('close', (ev) => {
    if (ws !== state.ws) return;
    onClosed(ev.code, ev.reason);
  });
}

function closeSocket(code, reason) {
  const ws = state.ws;
  if (!ws) return;
  state.ws = null;  // its events are ignored from now on
  stopPing();
  try { ws.close(code, reason); } catch { /* already closing */ }
}

function onClosed(code, reason) {
  const wasReady = state.ready;
  state.ws = null;
  state.ready = false;
  state.closed = true;
  stopPing();
  const turn = state.current;
  if (turn) endTurn(turn, 'interrupted', () => showTurnError(turn, t('interrupted'), ''));
  // 1005: closed without a status code; 1006: the connection broke.
  const args = { code, reason };
  const key = reason ? 'closed_detail_reason' : 'closed_detail';
  showState('closed', key, args);
  setText(ui.closedText, key, args);
  if (!wasReady) {
    // The hello failed (or the server is gone): no conversation to resume;
    // with nothing on screen yet, back to the token (the notice says why).
    state.conversationId = '';
    if (ui.log.childElementCount === 0) showLogin();
  }
  updateControls();
}

function showLogin() {
  ui.chat.hidden = true;
  ui.login.hidden = false;
  ui.token.focus();
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

function startPing() {
  stopPing();
  state.pingTimer = setInterval(() => send({ type: 'ping' }), PING_INTERVAL_MS);
}

function stopPing() {
  if (state.pingTimer) clearInterval(state.pingTimer);
  state.pingTimer = 0;
}

// ---- frames from the server ----------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case 'ready':
      state.ready = true;
      if (typeof frame.conversation_id === 'string') state.conversationId = frame.conversation_id;
      if (LANGUAGES.includes(frame.language) && frame.language !== state.language) {
        setLanguage(frame.language, { tellServer: false });
      }
      if (state.user) showState('connected', 'state_connected_as', { user: state.user });
      else showState('connected', 'state_connected');
      clearNotice();
      startPing();
      updateControls();
      ui.message.focus();
      break;
    case 'delta': {
      const turn = state.turns.get(frame.id);
      if (turn && turn === state.current && typeof frame.text === 'string') appendDelta(turn, frame.text);
      break;
    }
    case 'tool': {
      const turn = state.turns.get(frame.id);
      if (turn) showTool(turn, String(frame.name ?? ''), String(frame.status ?? ''));
      break;
    }
    case 'done': {
      const turn = state.turns.get(frame.id);
      if (turn && turn === state.current) endTurn(turn, 'done', () => showDone(turn, frame));
      break;
    }
    case 'error':
      onError(frame);
      break;
    case 'pong':
    default:
      break;
  }
}

function onError(frame) {
  const code = String(frame.code ?? '');
  const message = String(frame.message ?? code);
  const retry = Number.isFinite(frame.retry_after) ? frame.retry_after : null;
  const turn = frame.id ? state.turns.get(frame.id) : undefined;
  if (turn && turn === state.current) {
    endTurn(turn, code === 'cancelled' ? 'cancelled' : 'error', () => showTurnError(turn, message, code, retry));
    return;
  }
  // Not about a turn in flight: the hello, or a frame the server refused.
  const el = ui.notice;
  delete el.dataset.i18n;
  delete el.dataset.i18nArgs;
  el.textContent = code ? `${message} (${code})` : message;
  el.dataset.code = code;
  el.hidden = false;
}

// ---- turns ----------------------------------------------------------------

function newId() {
  const r = new Uint32Array(1);
  crypto.getRandomValues(r);
  state.seq += 1;
  return `c${state.seq}-${r[0].toString(36)}`;
}

function startTurn(text) {
  const id = newId();
  const el = ui.turnTemplate.content.firstElementChild.cloneNode(true);
  el.dataset.id = id;
  el.querySelector('.user-text').textContent = text;
  translate(el);
  const answerText = el.querySelector('.answer-text');
  const turn = {
    id,
    el,
    answer: el.querySelector('.answer'),
    answerNode: document.createTextNode(''),
    tools: el.querySelector('.tools'),
    pending: el.querySelector('.pending'),
    error: el.querySelector('.error'),
    meta: el.querySelector('.meta'),
    cancelling: false,
  };
  answerText.append(turn.answerNode);
  state.turns.set(id, turn);
  state.current = turn;
  const stick = nearBottom();
  ui.log.append(el);
  if (stick) scrollToBottom();
  return turn;
}

function nearBottom() {
  return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 48;
}

function scrollToBottom() {
  ui.log.scrollTop = ui.log.scrollHeight;
}

function appendDelta(turn, text) {
  const stick = nearBottom();
  turn.pending.hidden = true;
  turn.el.dataset.status = 'streaming';
  turn.answerNode.appendData(text);
  if (stick) scrollToBottom();
}

function showTool(turn, name, status) {
  const key = { started: 'tool_started', done: 'tool_done', failed: 'tool_failed' }[status];
  if (!key) return;
  // A finished call updates the line of the same tool's running call.
  let li = null;
  if (status !== 'started') {
    li = [...turn.tools.children].reverse().find((x) => x.dataset.name === name && x.dataset.status === 'started') ?? null;
  }
  if (!li) {
    li = document.createElement('li');
    li.dataset.name = name;
    turn.tools.append(li);
  }
  li.dataset.status = status;
  setText(li, key, { name });
}

function showDone(turn, frame) {
  if (typeof frame.text === 'string' && frame.text !== turn.answerNode.data) {
    turn.answerNode.data = frame.text;  // the whole answer is authoritative
  }
  if (frame.fallback === true) {
    turn.el.classList.add('fallback');
    const badge = document.createElement('span');
    badge.className = 'badge';
    setText(badge, 'fallback');
    turn.meta.append(badge);
  }
  const model = typeof frame.model === 'string' ? frame.model : '';
  if (model) {
    const m = document.createElement('span');
    m.className = 'model';
    m.textContent = model;
    turn.meta.append(m);
  }
  const cost = frame.usage && frame.usage.cost_usd;
  if (cost !== undefined && cost !== null) {
    const c = document.createElement('span');
    c.className = 'cost';
    setText(c, 'meta_cost', { cost: String(cost) });
    turn.meta.append(c);
  }
  turn.meta.hidden = turn.meta.childElementCount === 0;
}

function showTurnError(turn, message, code, retry = null) {
  turn.error.textContent = message;
  if (code) {
    const detail = document.createElement('span');
    detail.className = 'code';
    if (retry !== null) setText(detail, 'error_retry', { code, seconds: retry });
    else setText(detail, 'error_code', { code });
    turn.error.append(' ', detail);
  }
  turn.error.dataset.code = code;
  turn.error.hidden = false;
}

function endTurn(turn, status, show) {
  turn.pending.hidden = true;
  turn.el.dataset.status = status;
  turn.answer.setAttribute('aria-busy', 'false');
  show();
  if (state.current === turn) state.current = null;
  updateControls();
  if (nearBottom()) scrollToBottom();
  if (state.ready && status !== 'interrupted') ui.message.focus();
}

// ---- user actions ---------------------------------------------------------

ui.language.addEventListener('change', () => setLanguage(ui.language.value, { tellServer: true }));

ui.loginForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  if (!token) return;
  connect(token, { resume: false });
});

ui.devToken.addEventListener('click', async () => {
  ui.devToken.disabled = true;
  try {
    const r = await fetch(`/v1/dev/token?lang=${state.language}`, { cache: 'no-store', signal: AbortSignal.timeout(10_000) });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const body = await r.json();
    if (typeof body.token !== 'string' || !body.token) throw new Error('no token');
    ui.token.value = '';
    connect(body.token, { resume: false });
    if (typeof body.user === 'string' && body.user) state.user = body.user;
  } catch (e) {
    showNoticeKey('dev_token_failed', { detail: e && e.message ? e.message : String(e) });
  } finally {
    ui.devToken.disabled = false;
  }
});

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.message.value.trim();
  if (!text || !state.ready || state.current) return;
  const turn = startTurn(text);
  if (!send({ type: 'message', id: turn.id, text, stream: true })) {
    endTurn(turn, 'interrupted', () => showTurnError(turn, t('interrupted'), ''));
    return;
  }
  ui.message.value = '';
  updateControls();
});

ui.message.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.cancel.addEventListener('click', () => {
  const turn = state.current;
  if (!turn || turn.cancelling) return;
  if (send({ type: 'cancel', id: turn.id })) {
    turn.cancelling = true;
    updateControls();
  }
});

ui.disconnect.addEventListener('click', () => {
  const ws = state.ws;
  if (!ws) return;
  state.ws = null;
  stopPing();
  try { ws.close(1000, 'bye'); } catch { /* closing already */ }
  onClosed(1000, 'bye');
});

ui.reconnect.addEventListener('click', () => {
  if (state.token) connect(state.token, { resume: true });
  else showLogin();
});

ui.changeToken.addEventListener('click', () => {
  clearNotice();
  state.closed = false;
  state.conversationId = '';
  ui.log.replaceChildren();
  state.turns.clear();
  showState('disconnected', 'state_disconnected');
  updateControls();
  showLogin();
});

// ---- start ------------------------------------------------------------------

// The dev-token button only where the server hands out dev tokens
// (PARLEY_DEV_TOKENS=true, e.g. scripts/run on the simulator).
async function probeDevToken() {
  try {
    const r = await fetch('/v1/dev/token', { cache: 'no-store', signal: AbortSignal.timeout(10_000) });
    if (!r.ok) return;
    const body = await r.json();
    ui.devToken.hidden = !(body && typeof body.token === 'string' && body.token);
  } catch { /* no dev tokens */ }
}

setLanguage(state.language, { tellServer: false });
updateControls();
probeDevToken();
