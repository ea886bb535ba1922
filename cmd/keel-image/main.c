/* keel-image: the image store's CLI on its own, until keel-run dispatches `keel-run image ...`
 * to the same keel_image_cli(). */
#include "base/mem.h"
#include "image/image.h"

int main(int argc, char **argv)
{
	keel_mem_use_for_jansson();
	return keel_image_cli(argc, argv);
}
