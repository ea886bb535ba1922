/* keel-pod: pods from images on their own, until keel-run dispatches `keel-run pod ...` to the
 * same keel_pod_cli(). */
#include "base/mem.h"
#include "run/pod.h"

int main(int argc, char **argv)
{
	keel_mem_use_for_jansson();
	return keel_pod_cli(argc, argv);
}
