// The programs a node:test file runs for real (openrouter-sim, `parley
// serve`, nats-server): started on a port each picks itself, ready once its
// output names that port, and stopped by its PID. Plain ESM, Node built-ins
// only, so every test directory can import it whatever its node_modules.
//
//   const sim = await start('openrouter-sim', SIM, ['--port', '0'], { PATH: process.env.PATH },
//     /openrouter-sim listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
//   fetch(`http://127.0.0.1:${sim.port}/...`); sim.output(); sim.child.exitCode;
//   await stop(sim);   // in after(); stop(undefined) is a no-op
//
// `ready` is matched against all output so far (stdout and stderr together),
// so it may span lines (nats-server: the port, then "Server is ready"). The
// output is kept, its last 200-400 kB, for failure messages and for log
// assertions after the start.
import { spawn } from 'node:child_process';

const START_MS = 30_000;         // a program not ready by then has failed
const STOP_MS = 5_000;           // SIGTERM, then SIGKILL after this
const KILLED_MS = 2_000;         // how long to wait for the exit after SIGKILL
const OUTPUT_MAX = 400_000;      // characters of output kept: trimmed, when above,
const OUTPUT_KEEP = 200_000;     // to its last OUTPUT_KEEP

// Sends `signal` to the child by its PID, if it still runs.
function signalChild(child, signal) {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return false;
  try {
    process.kill(child.pid, signal);
    return true;
  } catch {
    return false;  // gone already
  }
}

// Starts `file` with `args` and exactly the environment `env`; resolves with
// { child, port, output() } once its output matches `ready` (group 1: the
// port). Fails after 30 s, or if it exits or cannot be spawned first; a
// program that failed so is killed by its PID.
export function start(name, file, args, env, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let done = false;
    const finish = (err, port) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        signalChild(child, 'SIGKILL');
        reject(err);
      } else {
        resolve({ child, port, output: () => output });
      }
    };
    const timer = setTimeout(() => finish(new Error(`${name} did not start within ${START_MS / 1000} s:\n${output}`)), START_MS);
    // Read on after the start too: the pipes must not fill up, and output()
    // serves later assertions on the log.
    const onData = (d) => {
      output += d;
      if (output.length > OUTPUT_MAX) output = output.slice(-OUTPUT_KEEP);
      if (done) return;
      const m = output.match(ready);
      if (m) finish(null, Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => finish(new Error(`${name}: ${e.message}`, { cause: e })));
    child.on('exit', (code, signal) => finish(new Error(`${name} exited (${code ?? signal}):\n${output}`)));
  });
}

// Stops what start() started, by its PID: SIGTERM, then SIGKILL after 5 s;
// resolves once it exited (or, killed, did not report it within 2 s more).
export function stop(proc) {
  if (!proc) return Promise.resolve();
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    let timer;
    const exited = () => { clearTimeout(timer); resolve(); };
    child.once('exit', exited);
    timer = setTimeout(() => {
      signalChild(child, 'SIGKILL');
      timer = setTimeout(() => { child.off('exit', exited); resolve(); }, KILLED_MS);
    }, STOP_MS);
    if (!signalChild(child, 'SIGTERM')) { child.off('exit', exited); clearTimeout(timer); resolve(); }
  });
}
