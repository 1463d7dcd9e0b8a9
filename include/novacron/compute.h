/*
 * compute.h - libnovacron's typed wrappers for the compute services:
 * novacron.v1.HostService, VmService and OperationsService
 * (proto/novacron/v1/{host,vm,operations}.proto), waiting for an
 * Operation and reading its result, and an iterator over
 * EventService.WatchEvents (event.proto) that remembers where it is so a
 * dropped watch resumes without a gap.
 *
 * Include it next to novacron.h (it includes novacron.h itself):
 *
 *   #include <novacron/compute.h>
 *
 * Every wrapper has the shape of the identity wrappers: the request message
 * in, on NC_OK a new response message out (release it with
 * nc_message_free), optional per-call options, optional nc_error. A request
 * of the wrong message type is NC_ERR_INVALID_ARGUMENT. Mutating requests
 * carry a request_id field: fill it with nc_new_request_id() so a retry
 * returns the first answer (the same Operation) instead of acting twice.
 *
 * Methods that talk to a hypervisor answer with an Operation at once; the
 * work goes on in the server. nc_operation_wait() waits for it to finish and
 * nc_operation_result() turns the finished Operation into its typed result
 * (e.g. the novacron.v1.Vm) or into an nc_error carrying the failure:
 *
 *   Novacron__V1__StartVmResponse *resp = NULL;
 *   Novacron__V1__Operation *op = NULL;
 *   ProtobufCMessage *vm = NULL;
 *   st = nc_vm_start(client, &req, &resp, NULL, &err);
 *   if (st == NC_OK) st = nc_operation_wait(client, resp->operation->name, 600000, 0, &op, &err);
 *   if (st == NC_OK) st = nc_operation_result(op, &novacron__v1__vm__descriptor, &vm, &err);
 *
 * Added in 0.2.
 */
#ifndef NOVACRON_COMPUTE_H
#define NOVACRON_COMPUTE_H

#include "google/protobuf/any.pb-c.h"
#include "novacron/novacron.h"
#include "novacron/v1/event.pb-c.h"
#include "novacron/v1/host.pb-c.h"
#include "novacron/v1/operations.pb-c.h"
#include "novacron/v1/vm.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The services' full names; methods are "/" NC_VM_SERVICE "/StartVm", ... */
#define NC_HOST_SERVICE "novacron.v1.HostService"
#define NC_VM_SERVICE "novacron.v1.VmService"
#define NC_OPERATIONS_SERVICE "novacron.v1.OperationsService"
#define NC_EVENT_SERVICE "novacron.v1.EventService"

/* ---- HostService (hosts are system resources: changes need a system administrator) ---- */

/* RegisterHost: connects to a libvirt URI and makes the host schedulable (unless registered
 * cordoned). The response's Operation ends with the novacron.v1.Host. */
NC_API nc_status nc_host_register(nc_client *client,
                                  const Novacron__V1__RegisterHostRequest *request,
                                  Novacron__V1__RegisterHostResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

/* GetHost. `uri` is empty for callers who are not system administrators. */
NC_API nc_status nc_host_get(nc_client *client, const Novacron__V1__GetHostRequest *request,
                             Novacron__V1__GetHostResponse **response,
                             const nc_call_options *call_opts, nc_error *err);

/* ListHosts (one page; follow next_page_token). */
NC_API nc_status nc_host_list(nc_client *client, const Novacron__V1__ListHostsRequest *request,
                              Novacron__V1__ListHostsResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* UpdateHost: description, labels and the cordoned flag, named by update_mask; answers
 * directly (no Operation). A stale etag answers ABORTED. */
NC_API nc_status nc_host_update(nc_client *client, const Novacron__V1__UpdateHostRequest *request,
                                Novacron__V1__UpdateHostResponse **response,
                                const nc_call_options *call_opts, nc_error *err);

/* DrainHost: cordons the host and migrates or stops its VMs. The Operation ends with the
 * novacron.v1.Host; cancel it with nc_operation_cancel(). */
NC_API nc_status nc_host_drain(nc_client *client, const Novacron__V1__DrainHostRequest *request,
                               Novacron__V1__DrainHostResponse **response,
                               const nc_call_options *call_opts, nc_error *err);

/* DeregisterHost: forgets the host (FAILED_PRECONDITION while VMs remain, unless forced). The
 * Operation ends with the novacron.v1.Host as last seen. */
NC_API nc_status nc_host_deregister(nc_client *client,
                                    const Novacron__V1__DeregisterHostRequest *request,
                                    Novacron__V1__DeregisterHostResponse **response,
                                    const nc_call_options *call_opts, nc_error *err);

/* ---- VmService (reads need ROLE_VIEWER on the project, everything else ROLE_OPERATOR) ---- */

/* CreateVm. The Operation ends with the created novacron.v1.Vm (running if `start` was set);
 * with validate_only it is already done and names nothing. */
NC_API nc_status nc_vm_create(nc_client *client, const Novacron__V1__CreateVmRequest *request,
                              Novacron__V1__CreateVmResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* GetVm. */
NC_API nc_status nc_vm_get(nc_client *client, const Novacron__V1__GetVmRequest *request,
                           Novacron__V1__GetVmResponse **response, const nc_call_options *call_opts,
                           nc_error *err);

/* ListVms (one page; parent `projects/-` for every project the caller has a role on). */
NC_API nc_status nc_vm_list(nc_client *client, const Novacron__V1__ListVmsRequest *request,
                            Novacron__V1__ListVmsResponse **response,
                            const nc_call_options *call_opts, nc_error *err);

/* UpdateVm: description, labels and placement, named by update_mask; answers directly. A stale
 * etag answers ABORTED. */
NC_API nc_status nc_vm_update(nc_client *client, const Novacron__V1__UpdateVmRequest *request,
                              Novacron__V1__UpdateVmResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* DeleteVm. The Operation ends with the novacron.v1.Vm as last seen (STATE_DELETING). */
NC_API nc_status nc_vm_delete(nc_client *client, const Novacron__V1__DeleteVmRequest *request,
                              Novacron__V1__DeleteVmResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* StartVm (STOPPED or ERROR VMs). The Operation ends with the running novacron.v1.Vm. */
NC_API nc_status nc_vm_start(nc_client *client, const Novacron__V1__StartVmRequest *request,
                             Novacron__V1__StartVmResponse **response,
                             const nc_call_options *call_opts, nc_error *err);

/* StopVm: graceful (bounded by `timeout`) or forced. The Operation ends with the
 * novacron.v1.Vm. */
NC_API nc_status nc_vm_stop(nc_client *client, const Novacron__V1__StopVmRequest *request,
                            Novacron__V1__StopVmResponse **response,
                            const nc_call_options *call_opts, nc_error *err);

/* RebootVm (RUNNING VMs). The Operation ends with the novacron.v1.Vm. */
NC_API nc_status nc_vm_reboot(nc_client *client, const Novacron__V1__RebootVmRequest *request,
                              Novacron__V1__RebootVmResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* PauseVm (RUNNING VMs). The Operation ends with the novacron.v1.Vm. */
NC_API nc_status nc_vm_pause(nc_client *client, const Novacron__V1__PauseVmRequest *request,
                             Novacron__V1__PauseVmResponse **response,
                             const nc_call_options *call_opts, nc_error *err);

/* ResumeVm (PAUSED VMs). The Operation ends with the novacron.v1.Vm. */
NC_API nc_status nc_vm_resume(nc_client *client, const Novacron__V1__ResumeVmRequest *request,
                              Novacron__V1__ResumeVmResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* ResizeVm: vCPUs and memory, on a STOPPED VM or live on a RUNNING one. The Operation ends with
 * the novacron.v1.Vm. */
NC_API nc_status nc_vm_resize(nc_client *client, const Novacron__V1__ResizeVmRequest *request,
                              Novacron__V1__ResizeVmResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* MigrateVm. The Operation ends with the novacron.v1.Vm on its new host. */
NC_API nc_status nc_vm_migrate(nc_client *client, const Novacron__V1__MigrateVmRequest *request,
                               Novacron__V1__MigrateVmResponse **response,
                               const nc_call_options *call_opts, nc_error *err);

/* CloneVm (STOPPED VMs). The Operation ends with the new novacron.v1.Vm. */
NC_API nc_status nc_vm_clone(nc_client *client, const Novacron__V1__CloneVmRequest *request,
                             Novacron__V1__CloneVmResponse **response,
                             const nc_call_options *call_opts, nc_error *err);

/* CreateSnapshot. The Operation ends with the novacron.v1.VmSnapshot. */
NC_API nc_status nc_vm_create_snapshot(nc_client *client,
                                       const Novacron__V1__CreateSnapshotRequest *request,
                                       Novacron__V1__CreateSnapshotResponse **response,
                                       const nc_call_options *call_opts, nc_error *err);

/* GetSnapshot. */
NC_API nc_status nc_vm_get_snapshot(nc_client *client,
                                    const Novacron__V1__GetSnapshotRequest *request,
                                    Novacron__V1__GetSnapshotResponse **response,
                                    const nc_call_options *call_opts, nc_error *err);

/* ListSnapshots of a VM (one page). */
NC_API nc_status nc_vm_list_snapshots(nc_client *client,
                                      const Novacron__V1__ListSnapshotsRequest *request,
                                      Novacron__V1__ListSnapshotsResponse **response,
                                      const nc_call_options *call_opts, nc_error *err);

/* RevertSnapshot. The Operation ends with the novacron.v1.Vm as the snapshot left it. */
NC_API nc_status nc_vm_revert_snapshot(nc_client *client,
                                       const Novacron__V1__RevertSnapshotRequest *request,
                                       Novacron__V1__RevertSnapshotResponse **response,
                                       const nc_call_options *call_opts, nc_error *err);

/* DeleteSnapshot. The Operation ends with the novacron.v1.VmSnapshot as last seen. */
NC_API nc_status nc_vm_delete_snapshot(nc_client *client,
                                       const Novacron__V1__DeleteSnapshotRequest *request,
                                       Novacron__V1__DeleteSnapshotResponse **response,
                                       const nc_call_options *call_opts, nc_error *err);

/* AttachVolume: an existing or new volume as a disk. The Operation ends with the
 * novacron.v1.Vm. */
NC_API nc_status nc_vm_attach_volume(nc_client *client,
                                     const Novacron__V1__AttachVolumeRequest *request,
                                     Novacron__V1__AttachVolumeResponse **response,
                                     const nc_call_options *call_opts, nc_error *err);

/* DetachVolume (the volume is kept). The Operation ends with the novacron.v1.Vm. */
NC_API nc_status nc_vm_detach_volume(nc_client *client,
                                     const Novacron__V1__DetachVolumeRequest *request,
                                     Novacron__V1__DetachVolumeResponse **response,
                                     const nc_call_options *call_opts, nc_error *err);

/* AttachNic. The Operation ends with the novacron.v1.Vm. */
NC_API nc_status nc_vm_attach_nic(nc_client *client, const Novacron__V1__AttachNicRequest *request,
                                  Novacron__V1__AttachNicResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

/* DetachNic (by MAC address). The Operation ends with the novacron.v1.Vm. */
NC_API nc_status nc_vm_detach_nic(nc_client *client, const Novacron__V1__DetachNicRequest *request,
                                  Novacron__V1__DetachNicResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

/* GetVmStats: one sample of a RUNNING or PAUSED VM's counters, answered directly. */
NC_API nc_status nc_vm_get_stats(nc_client *client, const Novacron__V1__GetVmStatsRequest *request,
                                 Novacron__V1__GetVmStatsResponse **response,
                                 const nc_call_options *call_opts, nc_error *err);

/* ---- OperationsService ---- */

/* GetOperation: the latest state of an operation. */
NC_API nc_status nc_operation_get(nc_client *client,
                                  const Novacron__V1__GetOperationRequest *request,
                                  Novacron__V1__GetOperationResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

/* ListOperations (one page, newest first by default; parent `projects/-` for every project,
 * system administrators only). */
NC_API nc_status nc_operation_list(nc_client *client,
                                   const Novacron__V1__ListOperationsRequest *request,
                                   Novacron__V1__ListOperationsResponse **response,
                                   const nc_call_options *call_opts, nc_error *err);

/* One WaitOperation call: returns when the operation is done or the request's timeout (bounded
 * by the call's deadline) has elapsed, with the operation's state then. Most callers want
 * nc_operation_wait(), which repeats it until the operation is done. */
NC_API nc_status nc_operation_wait_once(nc_client *client,
                                        const Novacron__V1__WaitOperationRequest *request,
                                        Novacron__V1__WaitOperationResponse **response,
                                        const nc_call_options *call_opts, nc_error *err);

/* CancelOperation: requests cancellation and returns the operation as it then is (not
 * necessarily done: uninterruptible steps finish first). */
NC_API nc_status nc_operation_cancel(nc_client *client,
                                     const Novacron__V1__CancelOperationRequest *request,
                                     Novacron__V1__CancelOperationResponse **response,
                                     const nc_call_options *call_opts, nc_error *err);

/* ---- waiting for an operation and reading its result ---- */

/* Flags of nc_operation_wait (0 for the defaults). */
typedef enum nc_wait_flags {
  /* Report an UNAVAILABLE answer at once instead of retrying it. */
  NC_WAIT_NO_RETRY = 1u << 0,
} nc_wait_flags;

/* How long one WaitOperation call of nc_operation_wait waits at most, in ms. */
#define NC_WAIT_ROUND_MS 30000

/* Waits until the operation `name` is done, by calling WaitOperation in a loop: each call waits
 * at most NC_WAIT_ROUND_MS (less when `timeout_ms` ends sooner) and has a deadline a little
 * beyond that. An UNAVAILABLE answer (server restarting, connection lost) or a call that hit
 * its deadline is retried with a growing pause (100 ms doubling up to 5 s) until `timeout_ms`;
 * other failures are returned as they are.
 *
 * `timeout_ms` bounds the whole wait: > 0 that many milliseconds, < 0 no bound, 0 one look
 * (GetOperation) without waiting. `flags` is 0 or NC_WAIT_* values; unknown bits are
 * NC_ERR_INVALID_ARGUMENT.
 *
 * NC_OK: *operation is the done operation (succeeded, failed or cancelled: read the outcome
 * with nc_operation_result). When the time is up first: NC_ERR_RPC with code
 * DEADLINE_EXCEEDED and *operation the latest state received, or NULL if none was. On other
 * failures *operation is NULL. Free a non-NULL *operation with nc_message_free() whatever the
 * status. Added in 0.2. */
NC_API nc_status nc_operation_wait(nc_client *client, const char *name, int64_t timeout_ms,
                                   unsigned flags, Novacron__V1__Operation **operation,
                                   nc_error *err);

/* The outcome of a done operation:
 *   - succeeded: NC_OK; when `response` is not NULL, *response is its `response` unpacked as
 *     a `response_type` message (e.g. &novacron__v1__vm__descriptor; free it with
 *     nc_message_free). A response of another type, or none, is NC_ERR_DECODE.
 *   - failed or cancelled: NC_ERR_RPC with err->code and err->message taken from the
 *     operation's `error` (CANCELLED for a cancelled one), as if a call had failed so.
 *   - not done yet, or a NULL operation: NC_ERR_INVALID_ARGUMENT.
 * `response` may be NULL to check the outcome only (response_type is then ignored).
 * Added in 0.2. */
NC_API nc_status nc_operation_result(const Novacron__V1__Operation *operation,
                                     const ProtobufCMessageDescriptor *response_type,
                                     ProtobufCMessage **response, nc_error *err);

/* Unpacks a google.protobuf.Any holding a `type` message (its type URL must end in
 * "/" followed by the type's full name, e.g. "type.googleapis.com/novacron.v1.Vm"). On NC_OK
 * free *out with nc_message_free; a type mismatch or bad bytes is NC_ERR_DECODE. Useful for
 * Event.other_resource too. Added in 0.2. */
NC_API nc_status nc_any_unpack(const Google__Protobuf__Any *any,
                               const ProtobufCMessageDescriptor *type, ProtobufCMessage **out,
                               nc_error *err);

/* ---- EventService.WatchEvents as an iterator ----
 *
 * A watch is one WatchEvents stream plus what is needed to reopen it: a copy of the request
 * and the sequence of the last event returned. nc_event_watch_next() hands out one Event at a
 * time (heartbeats are consumed unless NC_WATCH_HEARTBEATS is set); when the stream ends it
 * reports the final status once, e.g.
 *   - UNAVAILABLE: the server shut down or the connection was lost;
 *   - RESOURCE_EXHAUSTED: the client read too slowly for the server's buffer;
 *   - OUT_OF_RANGE: `after_sequence` is no longer retained (events were missed: list the
 *     resources again and start over) or is newer than the head;
 * and nc_event_watch_resume() reopens it after the last sequence seen, so the events in
 * between are replayed, none twice. The position starts at the request's after_sequence;
 * with after_sequence 0 (live events only) the head carried by the stream's first heartbeat
 * becomes the position, so a resume misses nothing that happened after the watch opened.
 *
 * A watch is used from one thread at a time, except nc_event_watch_cancel(). */
typedef struct nc_event_watch nc_event_watch;

/* Flags of nc_event_watch_open (0 for the defaults). */
typedef enum nc_watch_flags {
  /* Return heartbeats (Event.type TYPE_HEARTBEAT, `sequence` the head) from
   * nc_event_watch_next too; by default they are consumed silently. */
  NC_WATCH_HEARTBEATS = 1u << 0,
} nc_watch_flags;

/* Opens a watch with `request` (copied; NULL means every event of every project plus system
 * events, for system administrators). Unlike other calls, a watch has no deadline unless
 * call_opts->deadline_ms > 0 sets one (for each stream it opens); call_opts->request_id is sent
 * with every stream. The call connects lazily: an unreachable server or a rejected request is
 * reported by the first nc_event_watch_next(). `flags` is 0 or NC_WATCH_* values. Free the
 * watch with nc_event_watch_free(). Added in 0.2. */
NC_API nc_status nc_event_watch_open(nc_client *client,
                                     const Novacron__V1__WatchEventsRequest *request,
                                     unsigned flags, nc_event_watch **out,
                                     const nc_call_options *call_opts, nc_error *err);

/* Waits up to `timeout_ms` (< 0: as long as the stream lasts) for the next event.
 *   NC_OK: *event set (free it with nc_message_free); the position moves to its sequence.
 *   NC_ERR_RPC with DEADLINE_EXCEEDED and nc_event_watch_ended() false: nothing arrived in
 *     time; the stream goes on - call again.
 *   NC_ERR_RPC otherwise, or NC_ERR_END_OF_STREAM (the server ended it with OK): the stream
 *     ended with this status, reported once; nc_event_watch_ended() is now true.
 *   NC_ERR_CLOSED: called again after the end; resume or free the watch.
 * Added in 0.2. */
NC_API nc_status nc_event_watch_next(nc_event_watch *watch, Novacron__V1__Event **event,
                                     int64_t timeout_ms, nc_error *err);

/* Reopens the watch after the last sequence seen (nc_event_watch_last_sequence), with the
 * same filters, flags and call options; a stream still open is cancelled first. Connects
 * lazily like nc_event_watch_open. Added in 0.2. */
NC_API nc_status nc_event_watch_resume(nc_event_watch *watch, nc_error *err);

/* The watch's position: the sequence of the last event returned (or the starting point, see
 * above); pass it as after_sequence to resume elsewhere. 0 for NULL. Added in 0.2. */
NC_API int64_t nc_event_watch_last_sequence(const nc_event_watch *watch);

/* True once the current stream has ended (its final status was returned). Added in 0.2. */
NC_API bool nc_event_watch_ended(const nc_event_watch *watch);

/* Cancels the current stream (the next nc_event_watch_next reports CANCELLED). Safe from
 * another thread while a nc_event_watch_next is waiting. Added in 0.2. */
NC_API void nc_event_watch_cancel(nc_event_watch *watch);

/* Cancels the stream if still open and releases the watch. NULL is ignored. Added in 0.2. */
NC_API void nc_event_watch_free(nc_event_watch *watch);

#ifdef __cplusplus
}
#endif

#endif
