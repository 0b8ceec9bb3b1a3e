"""The seed document's code sample 5 of 5, verbatim (expect markers added)."""

from sqlalchemy.pool import QueuePool
import logging

# 本番環境用エンジン設定
production_engine = create_async_engine(
    DATABASE_URL,
    poolclass=QueuePool,
    pool_size=20,
    max_overflow=30,
    pool_pre_ping=True,
    pool_recycle=3600,
    pool_timeout=30,
    echo=False,
    echo_pool=True,  # 開発時のみ  # expect: FSA207
    future=True
)

# 監視とロギング
logging.basicConfig(level=logging.INFO)
db_logger = logging.getLogger('sqlalchemy.engine')

# パフォーマンス監視
class DatabaseMonitor:
    def __init__(self):
        self.query_times = []
        self.slow_queries = []
    
    async def log_query_performance(self, query: str, duration: float):
        self.query_times.append(duration)
        
        if duration > 1.0:  # 1秒以上のクエリ
            self.slow_queries.append({
                'query': query,
                'duration': duration,
                'timestamp': datetime.now()
            })
    
    def get_performance_stats(self) -> dict:
        if not self.query_times:
            return {}
        
        return {
            'avg_query_time': sum(self.query_times) / len(self.query_times),
            'max_query_time': max(self.query_times),
            'slow_queries_count': len(self.slow_queries),
            'total_queries': len(self.query_times)
        }
