package bundle

// oNoFollow is 0 on Windows, where the files of a bundle are checked with
// Lstat before they are opened.
const oNoFollow = 0
