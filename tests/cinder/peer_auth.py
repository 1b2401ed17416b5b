"""noauth middleware for a local integration-test Cinder: project id comes from the URL.

X-Auth-Token is accepted but never validated.  /v2|v3/{project_id}/... sets
context.project_id = {project_id}; user is 'peer'; roles member+reader
(+admin when CINDERPEER_ADMIN=1).
"""
import os
import re

import webob.dec

from cinder.api.middleware import auth
from cinder.api.openstack import wsgi
from cinder import context as cinder_context

from oslo_config import cfg

CONF = cfg.CONF


class PeerNoAuth(auth.base_wsgi.Middleware):
    @webob.dec.wsgify(RequestClass=wsgi.Request)
    def __call__(self, req):
        # same regex cinder's router uses for {project_id} (hex/dashes)
        m = re.match(r'^/(%s)(/|$)' % CONF.project_id_regex,
                     req.path_info or '')
        project_id = (m.group(1) if m else
                      req.headers.get('X-Project-Id') or
                      os.environ.get('CINDERPEER_DEFAULT_PROJECT',
                                     '00000000000000000000000000000000'))
        admin = os.environ.get('CINDERPEER_ADMIN', '0') == '1'
        roles = ['member', 'reader'] + (['admin'] if admin else [])
        ctx = cinder_context.RequestContext(
            user_id=req.headers.get('X-Auth-User', 'peer'),
            project_id=project_id, is_admin=admin, roles=roles,
            remote_address=getattr(req, 'remote_addr', '127.0.0.1'),
            timestamp=getattr(req.environ.get('cinder.context'),
                              'timestamp', None),
            request_id=req.environ.get('openstack.request_id'))
        req.environ['cinder.context'] = ctx
        return self.application
