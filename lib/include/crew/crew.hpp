// crew/crew.hpp — everything crew offers, in one include.
#pragma once

#include <crew/codec.hpp>
#include <crew/error.hpp>
#include <crew/inline_runner.hpp>
#include <crew/job.hpp>
#include <crew/process_pool.hpp>
#include <crew/protocol.hpp>
#include <crew/registry.hpp>
#include <crew/runner.hpp>
#include <crew/thread_pool.hpp>
#include <crew/worker_runtime.hpp>
