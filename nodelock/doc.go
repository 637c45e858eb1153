// Package nodelock keeps two znetd processes from running one node id on
// one machine. Each znetd takes an exclusive flock(2) on
// <dir>/node-<node-id>.lock (dir is /run/znet by default: machine-wide,
// emptied at boot) before it touches any kernel object, and writes its pid
// and state dir into the file so that the one refused can name the holder.
// The kernel drops the lock when the holder exits, however it exits.
//
// It leaves out everything else a second znetd could collide on: the API
// socket (api.ListenUnix refuses one that answers) and the state file
// (bbolt's own lock).
package nodelock
