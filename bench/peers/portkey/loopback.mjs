// Preloaded with `node --import ./loopback.mjs` by ../start-portkey.
//
// Portkey's build/start-server.js calls @hono/node-server's
// serve({fetch, port}) without a hostname, so Node would listen on the
// unspecified address (all interfaces, dual-stack). There is no CLI flag or
// environment variable for the bind address, so this preload forces every
// listen() that names only a port onto PORTKEY_BIND_HOST (default 127.0.0.1).
import net from 'node:net';

const host = process.env.PORTKEY_BIND_HOST || '127.0.0.1';
const origListen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    // listen(port[, host][, backlog][, cb]) with host missing or undefined
    if (args.length === 1 || args[1] === undefined || typeof args[1] === 'function') {
      if (args.length === 1) args.push(host);
      else if (args[1] === undefined) args[1] = host;
      else args.splice(1, 0, host);
    }
  } else if (args[0] && typeof args[0] === 'object' && !Array.isArray(args[0]) &&
             args[0].path === undefined && args[0].host === undefined) {
    args[0] = { ...args[0], host };
  }
  return origListen.apply(this, args);
};
