// crew/crew.hpp — everything crew offers, in one include.
//
// Reading order: job.hpp (declare a job), registry.hpp (implement it), worker_runtime.hpp
// (serve it from a worker), process_pool.hpp (run it), runner.hpp (submit, map, the
// completion signature), error.hpp (failures), thread_pool.hpp and inline_runner.hpp (the
// same jobs in-process), codec.hpp (argument types), protocol.hpp (the wire).
#pragma once

#include <crew/codec.hpp>
#include <crew/error.hpp>
#include <crew/events.hpp>
#include <crew/inline_runner.hpp>
#include <crew/job.hpp>
#include <crew/process_pool.hpp>
#include <crew/protocol.hpp>
#include <crew/registry.hpp>
#include <crew/runner.hpp>
#include <crew/thread_pool.hpp>
#include <crew/worker_runtime.hpp>
