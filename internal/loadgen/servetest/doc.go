// Package servetest is test support for the server and the load generator
// that drives it: the embedded demo model converted to a .shrink file and
// opened, and a server's Serve method run on a loopback port for the length
// of a test. It lives beside internal/loadgen because both serve's tests and
// loadgen's need it, and serve's own tests cannot import a package that
// imports serve: Serve takes the method value instead.
package servetest
