//go:build unix && !linux

package harness

import "syscall"

func dieWithParent(*syscall.SysProcAttr) {}
