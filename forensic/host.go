package forensic

// Host identifies the machine evidence was acquired on: what an examiner
// needs to tie a bundle to one boot of one machine.
type Host struct {
	// Hostname is the host's name (uname nodename).
	Hostname string `json:"hostname"`
	// Kernel is the kernel release and version.
	Kernel string `json:"kernel"`
	// Machine is the hardware name, e.g. x86_64.
	Machine string `json:"machine"`
	// MachineID is /etc/machine-id.
	MachineID string `json:"machine_id"`
	// BootID is /proc/sys/kernel/random/boot_id: it changes at every boot.
	BootID string `json:"boot_id"`
}
