// Package acceptloop accepts connections the way a long-lived server must:
// an error that says the process is short of something for a moment (out
// of file descriptors, a connection reset before it was accepted) is waited
// out with a growing pause, instead of ending the server or spinning on it.
// Without it, whoever can open connections to a server that shares its
// process with others (the data plane's DNS and UAPI listeners) could make
// the next Accept fail and stop the whole process.
//
// It leaves out limiting how many connections are open: that is the
// caller's, who knows what each connection costs.
package acceptloop
