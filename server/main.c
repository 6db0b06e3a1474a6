/* conferd - the confer server and operator tool. */
#include "srv_ops.h"

int main(int argc, char **argv)
{
    return srv_main(argc, argv);
}
