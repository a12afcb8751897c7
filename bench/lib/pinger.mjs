/**
 * The shell command of a child writing `count` lines `PING <i> <hrtime ns>`, one every
 * `intervalMs`: the stamp lets a scenario measure the time from the write to the delivery.
 */
export function pinger(count, intervalMs) {
  const script = `
const { writeSync } = require('node:fs');
let i = 0;
const timer = setInterval(() => {
  writeSync(1, 'PING ' + i + ' ' + process.hrtime.bigint() + '\\n');
  if (++i === ${count}) clearInterval(timer);
}, ${intervalMs});`;
  return `'${process.execPath}' -e '${script.replaceAll("'", "'\\''")}'`;
}
