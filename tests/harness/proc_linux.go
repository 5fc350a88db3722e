package harness

import "syscall"

// dieWithParent has Linux kill the child when the test binary dies (go test's timeout), so no
// moto_server or bootstrap outlives a run.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
