// bccd bench peer: accept every recipient, write each message to its own file and fsync it before 250.
const fs = require('fs');
const path = require('path');
let seq = 0;
exports.hook_rcpt = function (next) { next(OK); };
exports.hook_queue = function (next, connection) {
  const file = path.join(process.env.BENCH_SPOOL, `${process.pid}-${seq++}.eml`);
  const fd = fs.openSync(file, 'w');
  const out = fs.createWriteStream(null, { fd, autoClose: false });
  out.on('finish', () => {
    fs.fsync(fd, (err) => {
      fs.closeSync(fd);
      if (err) return next(DENYSOFT, 'fsync failed');
      next(OK, 'stored');
    });
  });
  connection.transaction.message_stream.pipe(out, { line_endings: '\r\n' });
};
