'use strict';
// A package-like blob client that lets its users profile open blobs, as in the Go
// custom-profiles article: every Open records the caller's stack, Close forgets it.
const pprof = require('sigprof');

const openBlobProfile = pprof.NewProfile('blobstore.Open');

class Blob {
  constructor(name) {
    this.name = name;
  }

  /** Frees the blob; all opened blobs need to be closed when no longer in use. */
  Close() {
    openBlobProfile.Remove(this);
  }
}

/** Opens a blob. */
function Open(name) {
  const blob = new Blob(name);
  // skip 2: past Add and past Open, so the stack starts at whoever called Open.
  openBlobProfile.Add(blob, 2);
  return blob;
}

module.exports = { Open, Blob, openBlobProfile };
