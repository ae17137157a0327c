/*
 * tsmpiexec's PMI client library (libtsmpiexec-pmi.so): the PMI-1 and PMI-2 C APIs, spoken over the wire
 * protocol tsmpiexec (and MPICH's Hydra) serve, through PMI_FD, PMI_PORT=host:port or PMI_PORT=unix:///path.
 * Programs and MPI libraries that load a PMI library (Open MPI's flux component, Intel MPI's
 * I_MPI_PMI_LIBRARY, ...) can load this one. See docs/pmi-library.md.
 */
#ifndef TSMPIEXEC_PMI_H
#define TSMPIEXEC_PMI_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- PMI-1 ---- */
#define PMI_SUCCESS 0
#define PMI_FAIL -1
#define PMI_ERR_INIT 1
#define PMI_ERR_NOMEM 2
#define PMI_ERR_INVALID_ARG 3
#define PMI_ERR_INVALID_KEY 4
#define PMI_ERR_INVALID_KEY_LENGTH 5
#define PMI_ERR_INVALID_VAL 6
#define PMI_ERR_INVALID_VAL_LENGTH 7
#define PMI_ERR_INVALID_LENGTH 8
#define PMI_ERR_INVALID_NUM_ARGS 9
#define PMI_ERR_INVALID_ARGS 10
#define PMI_ERR_INVALID_NUM_PARSED 11
#define PMI_ERR_INVALID_KEYVALP 12
#define PMI_ERR_INVALID_SIZE 13

#define PMI_TRUE 1
#define PMI_FALSE 0

typedef struct PMI_keyval_t {
    const char *key;
    char *val;
} PMI_keyval_t;

int PMI_Init(int *spawned);
int PMI_Initialized(int *initialized);
int PMI_Finalize(void);
int PMI_Abort(int exit_code, const char *error_msg);
int PMI_Get_size(int *size);
int PMI_Get_rank(int *rank);
int PMI_Get_universe_size(int *size);
int PMI_Get_appnum(int *appnum);
int PMI_Get_clique_size(int *size);
int PMI_Get_clique_ranks(int ranks[], int length);
int PMI_Get_id(char *id_str, int length);
int PMI_Get_id_length_max(int *length);
int PMI_Get_kvs_domain_id(char *id_str, int length);
int PMI_Barrier(void);
int PMI_KVS_Get_my_name(char *kvsname, int length);
int PMI_KVS_Get_name_length_max(int *length);
int PMI_KVS_Get_key_length_max(int *length);
int PMI_KVS_Get_value_length_max(int *length);
int PMI_KVS_Put(const char *kvsname, const char *key, const char *value);
int PMI_KVS_Commit(const char *kvsname);
int PMI_KVS_Get(const char *kvsname, const char *key, char *value, int length);
int PMI_Publish_name(const char *service_name, const char *port);
int PMI_Unpublish_name(const char *service_name);
int PMI_Lookup_name(const char *service_name, char *port);
int PMI_Spawn_multiple(int count, const char *cmds[], const char **argvs[], const int maxprocs[],
                       const int info_keyval_sizes[], const PMI_keyval_t *info_keyval_vectors[],
                       int preput_keyval_size, const PMI_keyval_t preput_keyval_vector[], int errors[]);

/* ---- PMI-2 ---- */
#define PMI2_SUCCESS 0
#define PMI2_FAIL -1
#define PMI2_ERR_INIT 1
#define PMI2_ERR_NOMEM 2
#define PMI2_ERR_INVALID_ARG 3
#define PMI2_ERR_INVALID_KEY 4
#define PMI2_ERR_INVALID_KEY_LENGTH 5
#define PMI2_ERR_INVALID_VAL 6
#define PMI2_ERR_INVALID_VAL_LENGTH 7
#define PMI2_ERR_INVALID_LENGTH 8
#define PMI2_ERR_INVALID_NUM_ARGS 9
#define PMI2_ERR_INVALID_ARGS 10
#define PMI2_ERR_INVALID_NUM_PARSED 11
#define PMI2_ERR_INVALID_KEYVALP 12
#define PMI2_ERR_INVALID_SIZE 13
#define PMI2_ERR_OTHER 14

#define PMI2_MAX_KEYLEN 64
#define PMI2_MAX_VALLEN 1024
#define PMI2_MAX_ATTRVALUE 1024
#define PMI2_ID_NULL -1

int PMI2_Init(int *spawned, int *size, int *rank, int *appnum);
int PMI2_Finalize(void);
int PMI2_Initialized(void);
int PMI2_Abort(int flag, const char msg[]);
int PMI2_Job_GetId(char jobid[], int jobid_size);
int PMI2_KVS_Put(const char key[], const char value[]);
int PMI2_KVS_Fence(void);
int PMI2_KVS_Get(const char *jobid, int src_pmi_id, const char key[], char value[], int maxvalue, int *vallen);
int PMI2_Info_GetJobAttr(const char name[], char value[], int valuelen, int *found);
int PMI2_Info_GetNodeAttr(const char name[], char value[], int valuelen, int *found, int waitfor);
int PMI2_Info_PutNodeAttr(const char name[], const char value[]);
int PMI2_Nameserv_publish(const char service_name[], const void *info_ptr, const char port[]);
int PMI2_Nameserv_lookup(const char service_name[], const void *info_ptr, char port[], int portLen);
int PMI2_Nameserv_unpublish(const char service_name[], const void *info_ptr);

#ifdef __cplusplus
}
#endif
#endif
