/* The machine facts behind Condition*= (systemd.unit(5)), as systemd 252 finds them, split from
 * the engine so they can be tested on their own: each takes what it reads as arguments (a
 * directory root, a file's text) or reads the live system through the *_live() variants. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* systemd's virtualization ids ("kvm", "docker", ...); "" when none. */
struct keel_virt {
	char vm[32];
	char container[32];
};
/* The container id for a container= value (systemd's container_from_string, "oci" aside):
 * unknown names are "container-other". */
const char *keel_virt_container_name(const char *value);
/* The VM id for a DMI vendor/product string (startswith, systemd's table), or NULL. */
const char *keel_virt_dmi_vendor(const char *s);
/* The VM id for a CPUID hypervisor signature (12 bytes, NUL-terminated), or "vm-other". */
const char *keel_virt_cpuid_vendor(const char *sig);
/* Detection under root ("" for the real /): container first, then VM; pid1 says whether to
 * trust our own $container. */
void keel_virt_detect(const char *root, bool pid1, struct keel_virt *ret);
/* ConditionVirtualization= against what was detected (private-users is answered by the caller). */
bool keel_cond_virtualization(const char *param, const struct keel_virt *v);

/* ConditionKernelCommandLine=: words of cmdline (quotes removed); "a=b" must match a word
 * exactly, "a" matches "a" or "a=...". */
bool keel_cond_kernel_cmdline(const char *cmdline, const char *param);

/* The capability number for "CAP_NET_ADMIN"/"cap_net_admin"/"12", or -1. */
int keel_capability_from_name(const char *name);
/* ConditionCapability=: the bit in a CapBnd mask (hex from /proc/self/status). Unknown: false. */
bool keel_cond_capability(uint64_t capbnd, const char *name);

/* ConditionACPower= under a power_supply class directory: true when a "Mains" supply is online,
 * or none reports offline (systemd's on_ac_power()). */
bool keel_on_ac_power(const char *power_supply_dir);

/* ConditionNeedsUpdate=DIR: /usr (usr) is newer than DIR/.updated, or that is missing; false on a
 * read-only DIR. */
bool keel_cond_needs_update(const char *usr, const char *dir);

/* ConditionControlGroupController=: each known controller in the space-separated param must be
 * in `available` (space-separated); unknown names are ignored, and a list of only unknown
 * names holds (systemd). */
bool keel_cond_cg_controllers(const char *param, const char *available);

/* ConditionCPUs=/ConditionMemory=/ConditionKernelVersion= comparisons: an optional operator
 * (< <= = == != >= >) then the operand; without one, >= for numbers (CPUs, Memory). 1 holds,
 * 0 not, -1 the operand does not parse. `size` parses the operand with K/M/G (base 1024). */
int keel_cond_order_u64(const char *param, uint64_t actual, bool size);

/* ConditionOSRelease=: space-separated KEY OP VALUE words against os-release(5) text, all must
 * hold; = and != compare strings, < <= == <> >= > versions, $= and !$= globs; a missing key is
 * "". 1 holds, 0 not, -1 a word without an operator. */
int keel_cond_os_release(const char *text, const char *param);
