package daemon

// WriteTop exposes writeTop to the black-box tests.
var WriteTop = writeTop
