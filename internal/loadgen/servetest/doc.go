// Package servetest is test support for the server and the load generator
// that drives it: the demo model converted (with internal/demo/demotest) and
// opened as the server runs it, and a server's Serve method run on a
// loopback port for the length of a test. It lives beside internal/loadgen
// because both serve's tests and loadgen's need it, and serve's own tests
// cannot import a package that imports serve: Serve takes the method value
// instead.
package servetest
