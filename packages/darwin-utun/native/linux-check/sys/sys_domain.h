#pragma once
// Linux check only: see ../prelude.h. Not Darwin's layouts or values.
#define SYSPROTO_CONTROL 2
#define AF_SYS_CONTROL 2
