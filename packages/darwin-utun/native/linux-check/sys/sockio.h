#pragma once
// Linux check only: see ../prelude.h. Not Darwin's layouts or values.
#include <linux/sockios.h>
