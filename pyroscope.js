'use strict';
// `sigprof/pyroscope` for require(): the push API. Preloaded with
// `node --require sigprof/pyroscope app.js` and PYROSCOPE_SERVER_ADDRESS (or
// PYROSCOPE_APPLICATION_NAME) set, it also starts pushing before the program runs.
const pyroscope = require('./dist/pyroscope/index.js');

// A --require preload's parent is Node's internal preload module; an application's own
// require or import has another parent and starts nothing by itself.
if (module.parent && module.parent.id === 'internal/preload') pyroscope.autostartFromEnv();

module.exports = pyroscope;
