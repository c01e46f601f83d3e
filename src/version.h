#pragma once
#define QE_VERSION "0.1.0"
