'use strict';
// `node --require sigprof/register app.js`: loads sigprof before any user code is
// compiled, so every function gets line tables from V8.
require('./dist/index.js');
