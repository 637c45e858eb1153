package ipam

import "errors"

var (
	// ErrFull is returned by Allocator.Allocate when the subnet has no free
	// address left, and by PlanSubnet when no prefix of the asked size is free.
	ErrFull = errors.New("subnet is full")
	// ErrTaken is returned (wrapped, with the address) by Allocator.Reserve when
	// the address is already allocated.
	ErrTaken = errors.New("address is taken")
	// ErrOutside is returned (wrapped, with the address) by Allocator.Reserve
	// when the address is not inside the allocator's subnet.
	ErrOutside = errors.New("address is outside the subnet")
	// ErrReserved is returned (wrapped, with the address) by Allocator.Reserve
	// for the subnet's network, gateway (first host) or broadcast address.
	ErrReserved = errors.New("address is reserved")
)
